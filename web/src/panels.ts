// The side panels, one open at a time: chat, people, polls and (hosts) breakout rooms. The
// people list is drawn from the roster; the polls live here (polls.ts keeps them, ui/polls.ts
// draws them), told of changes by the server's poll messages.
import { LocalParticipant, Track, type Participant, type Room } from 'livekit-client';

import type { Api } from './api';
import type { Breakouts } from './breakout';
import type { MeetingChat } from './chat';
import type { ContentSealer } from './content';
import { h, replace } from './dom';
import type { Moderation } from './moderation';
import type { SharedNotepad } from './notepad/notepad';
import { Polls, type PollView } from './polls';
import { handRaisedAt, isPresenter } from './protocol';
import { SOURCE_CAMERA, SOURCE_MICROPHONE, sourceAllowed, type Roster } from './roster';
import { PeoplePanel } from './ui/people';
import { PollsPanel } from './ui/polls';
import { toast } from './ui/toasts';

export type Panel = 'chat' | 'people' | 'polls' | 'breakout' | 'notepad' | null;

export interface PanelsOptions {
  api: Api;
  room: Room;
  roster: Roster;
  /** Our identity. */
  identity: string;
  isAdmin: boolean;
  encrypted: boolean;
  /** The room has polls (null: off). */
  polls: ContentSealer | null;
  chat: MeetingChat | null;
  moderation: Moderation;
  breakouts: Breakouts;
  /** The shared notepad (null: the room has it off). */
  notepad: SharedNotepad | null;
  /** The polls button: whether participants see it, how many polls wait for our answer. */
  onPolls: (visible: boolean, unanswered: number, panelOpen: boolean) => void;
  /** A panel opened or closed (`panel`: the one open now). */
  onToggle: (panel: Panel) => void;
}

export class Panels {
  /** The side column the open panel shows in. */
  readonly el: HTMLElement;
  readonly polls: Polls | null;
  private readonly pollsPanel: PollsPanel | null;
  private readonly people: PeoplePanel;
  private current: Panel = null;

  constructor(private readonly o: PanelsOptions) {
    this.el = h('aside', { class: 'side', hidden: true });
    this.people = new PeoplePanel(o.moderation.actions, () => this.toggle(null), null, o.moderation.el);
    this.polls = o.polls
      ? new Polls({
          api: o.api,
          sealer: o.polls,
          identity: o.identity,
          isAdmin: o.isAdmin,
          onChange: (polls, active) => this.pollsChanged(polls, active),
        })
      : null;
    this.pollsPanel = this.polls
      ? new PollsPanel(
          o.isAdmin,
          o.encrypted,
          {
            create: (d) => this.polls?.create(d) ?? Promise.resolve('Polls are off.'),
            vote: (id, option) => this.polls?.vote(id, option) ?? Promise.resolve('Polls are off.'),
            close: (id) => (this.polls ? this.polls.close(id).catch(() => toast('The poll could not be closed.', 'error')) : Promise.resolve()),
            exportCsv: (id) => this.exportPoll(id),
            activate: (active) => (this.polls ? this.o.api.activatePolls(active).then(() => this.polls?.setActive(active)).catch(() => toast('Polls could not be opened for everyone.', 'error')) : Promise.resolve()),
          },
          () => this.toggle(null),
        )
      : null;
  }

  /** The panel open now. */
  get open(): Panel {
    return this.current;
  }

  /** Opens `p`, or closes it when it is open (null: closes whichever is). */
  toggle(p: Panel): void {
    const { chat, breakouts, notepad } = this.o;
    const before = this.current;
    this.current = this.current === p ? null : p;
    if (before === 'notepad' && this.current !== 'notepad') notepad?.closed();
    if (this.current === 'chat' && chat) {
      replace(this.el, chat.panel.el);
      chat.read();
      this.el.hidden = false;
      chat.panel.focus();
    } else if (this.current === 'people') {
      replace(this.el, this.people.el);
      this.el.hidden = false;
    } else if (this.current === 'polls' && this.pollsPanel) {
      replace(this.el, this.pollsPanel.el);
      this.el.hidden = false;
    } else if (this.current === 'notepad' && notepad) {
      replace(this.el, notepad.el);
      this.el.hidden = false;
      if (before !== 'notepad') void notepad.opened();
    } else if (this.current === 'breakout' && breakouts.panel) {
      breakouts.setPeople();
      replace(this.el, breakouts.panel.el);
      this.el.hidden = false;
    } else {
      replace(this.el);
      this.el.hidden = true;
    }
    this.o.onToggle(this.current);
  }

  /** The panels follow the room: whom the chat can write to, the people list, the breakout plan. */
  sync(all: Participant[]): void {
    const { roster, room } = this.o;
    if (this.current === 'breakout') this.o.breakouts.setPeople();
    const others = [...room.remoteParticipants.values()];
    this.o.chat?.panel.setPeople(
      others.map((p) => ({ identity: p.identity, name: roster.displayName(p.identity) })),
      others.some((p) => roster.isHost(p)),
    );
    if (this.current !== 'people') return;
    this.people.render(
      all.map((p) => {
        const mic = p.getTrackPublication(Track.Source.Microphone);
        const cam = p.getTrackPublication(Track.Source.Camera);
        return {
          identity: p.identity,
          name: roster.displayName(p.identity),
          isLocal: p instanceof LocalParticipant,
          isAdmin: roster.isHost(p),
          micOn: !!mic && !mic.isMuted,
          camOn: !!cam && !cam.isMuted,
          mismatch: roster.mismatch(p),
          // Sends nothing at all (no media, no data): someone who asked to be hidden in an
          // encrypted room, shown because they can read the meeting.
          observer: !!p.permissions && !p.permissions.canPublish && !p.permissions.canPublishData,
          micLocked: !sourceAllowed(p, SOURCE_MICROPHONE),
          camLocked: !sourceAllowed(p, SOURCE_CAMERA),
          micTrackSid: mic?.trackSid ?? null,
          camTrackSid: cam?.trackSid ?? null,
          handRaisedAt: handRaisedAt(p.metadata),
          presenter: isPresenter(p.metadata),
        };
      }),
    );
  }

  /** A poll message of the server: the polls again, and a notice of a new or closed one. */
  async onPollMessage(type: 'POLL_CREATED' | 'POLL_CLOSED' | 'POLL_RESPONSE' | 'POLLS_ACTIVE', pollId: string): Promise<void> {
    if (!this.polls) return;
    await this.polls.refresh();
    const p = pollId ? this.polls.find(pollId) : undefined;
    if (type === 'POLL_CREATED' && p && p.createdBy !== this.o.identity) {
      toast(p.question === null ? 'A new poll (it could not be decrypted with your key).' : `New poll: ${p.question}`, 'info');
    } else if (type === 'POLL_CLOSED' && p && !this.o.isAdmin) {
      toast(p.question === null ? 'A poll closed.' : `Poll closed: ${p.question}`, 'info');
    }
  }

  private pollsChanged(polls: PollView[], active: boolean): void {
    this.o.onPolls(active || polls.length > 0, this.polls?.unanswered ?? 0, this.current === 'polls');
    this.pollsPanel?.render(polls, active);
  }

  private async exportPoll(pollId: string): Promise<void> {
    const csv = await this.polls?.exportCsv(pollId);
    if (!csv) return;
    const url = URL.createObjectURL(new Blob([csv], { type: 'text/csv;charset=utf-8' }));
    const a = h('a', { href: url, download: `poll-${pollId}.csv`, hidden: true });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
}
