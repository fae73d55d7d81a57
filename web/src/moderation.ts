// What hosts do about others, from the People panel: mute someone's microphone or camera, remove
// them, lock one person's or everyone's microphone, camera, screen sharing and chat, mute all,
// lower hands, make someone the presenter, and let in or decline who waits (the waiting room,
// asked every few seconds while the meeting runs). Hosts also hear when a hand goes up.
import { LocalParticipant, Track, type Participant, type Room } from 'livekit-client';

import { ApiError, type Api, type VerifyReply, type WaitingUser } from './api';
import { h } from './dom';
import { apiErrorText } from './messages';
import { handRaisedAt } from './protocol';
import type { Roster } from './roster';
import { LOCK_LABELS, LockControls, type LockService } from './ui/locks';
import { confirmDialog } from './ui/modal';
import type { PeopleActions, PersonView } from './ui/people';
import { toast } from './ui/toasts';
import { WaitingList } from './ui/waiting';

/** How often a host's client asks who waits (the server lists those who asked within 15 s). */
const WAITING_POLL_MS = 2500;

export interface ModerationOptions {
  api: Api;
  room: Room;
  verify: VerifyReply;
  roster: Roster;
  /** We are a host. */
  isAdmin: boolean;
  /** Runs `fn` after `ms` unless the meeting has ended by then. */
  later: (ms: number, fn: () => void) => void;
  ended: () => boolean;
  /** How many wait to be let in. */
  onWaiting: (n: number) => void;
}

export class Moderation {
  /** What the People panel offers. */
  readonly actions: PeopleActions;
  /** Hosts: mute all, the locks for everyone, and who waits (the top of the People panel). */
  readonly el: HTMLElement | null;
  private readonly locks: LockControls | null;
  /** Hosts of a room with a waiting room: who waits, polled while the meeting runs. */
  private readonly waiting: WaitingList | null;
  private waitingSeen = new Set<string>();
  /** Whose hands we saw up at the last sync (hosts are told when one goes up). */
  private handsSeen = new Map<string, boolean>();

  constructor(private readonly o: ModerationOptions) {
    this.actions = {
      canModerate: o.isAdmin,
      mute: (p) => void this.mute(p, 'mic'),
      stopVideo: (p) => void this.mute(p, 'cam'),
      remove: (p) => void this.remove(p),
      lock: (p, what, lock) => void this.lockOne(p, what, lock),
      lowerHand: (p) => void this.lowerHand(p),
      makePresenter: (p) => void this.makePresenter(p),
    };
    const dl = o.verify.room.default_lock_settings ?? {};
    this.locks = o.isAdmin
      ? new LockControls(
          {
            mic: !!dl.lock_microphone,
            webcam: !!dl.lock_webcam,
            screenShare: !!dl.lock_screen_sharing,
            chat: !!dl.lock_chat,
            privateChat: !!dl.lock_private_chat,
            chatFile: !!dl.lock_chat_file_share,
            whiteboard: !!dl.lock_whiteboard,
            sharedNotepad: !!dl.lock_shared_notepad,
          },
          { muteAll: () => void this.muteAll(), setLock: (s, lock) => this.lockAll(s, lock) },
        )
      : null;
    this.waiting =
      o.isAdmin && o.verify.room.features?.waiting_room_features?.is_active
        ? new WaitingList({ approve: (id) => void this.approveWaiting(id), reject: (u) => void this.rejectWaiting(u) })
        : null;
    this.el = o.isAdmin ? h('div', null, this.locks?.el ?? null, this.waiting?.el ?? null) : null;
  }

  /** In the meeting: hosts start asking who waits. */
  start(): void {
    if (this.waiting) void this.pollWaiting();
  }

  /** Hosts hear of a hand that goes up (not of those already up when they joined). */
  noticeHands(all: Participant[]): void {
    const first = this.handsSeen.size === 0;
    const now = new Map<string, boolean>();
    for (const p of all) {
      const up = handRaisedAt(p.metadata) !== null;
      now.set(p.identity, up);
      if (up && !this.handsSeen.get(p.identity) && !first && this.o.isAdmin && !(p instanceof LocalParticipant)) {
        toast(`${this.o.roster.displayName(p.identity)} raised their hand.`, 'info');
      }
    }
    this.handsSeen = now;
  }

  private async mute(p: PersonView, which: 'mic' | 'cam'): Promise<void> {
    const sid = which === 'mic' ? p.micTrackSid : p.camTrackSid;
    if (!sid) return;
    try {
      await this.o.api.muteTrack(p.identity, sid, true);
      toast(which === 'mic' ? `Muted ${p.name}.` : `Turned off ${p.name}’s camera.`, 'success');
    } catch (e) {
      toast(apiErrorText(e), 'error');
    }
  }

  private async remove(p: PersonView): Promise<void> {
    const block = { checked: false };
    const ok = await confirmDialog({
      title: `Remove ${p.name}?`,
      body: 'They will be disconnected, and the join link they used will no longer let them in.',
      confirm: 'Remove',
      danger: true,
      option: { label: 'Also block them from joining this session again, even with a new link', testid: 'remove-block-checkbox', value: block },
    });
    if (!ok) return;
    try {
      await this.o.api.removeParticipant(p.identity, block.checked);
      toast(block.checked ? `Removed and blocked ${p.name}.` : `Removed ${p.name}.`, 'success');
    } catch (e) {
      toast(apiErrorText(e), 'error');
    }
  }

  /** Lowers one participant's hand, or everyone's (null). */
  private async lowerHand(p: PersonView | null): Promise<void> {
    try {
      await this.o.api.raiseHand(false, p ? p.identity : 'all');
    } catch (e) {
      toast(apiErrorText(e), 'error');
    }
  }

  private async makePresenter(p: PersonView): Promise<void> {
    try {
      await this.o.api.switchPresenter(p.identity, true);
      toast(`${p.name} is now the presenter.`, 'success');
    } catch (e) {
      toast(apiErrorText(e), 'error');
    }
  }

  private async lockOne(p: PersonView, what: 'mic' | 'webcam', lock: boolean): Promise<void> {
    const label = what === 'mic' ? 'microphone' : 'camera';
    try {
      await this.o.api.updateLockSettings(p.identity, what, lock);
      toast(lock ? `Locked ${p.name}’s ${label}.` : `Unlocked ${p.name}’s ${label}.`, 'success');
    } catch (e) {
      toast(apiErrorText(e), 'error');
    }
  }

  private async lockAll(service: LockService, lock: boolean): Promise<boolean> {
    const what = LOCK_LABELS[service].toLowerCase();
    try {
      const r = await this.o.api.updateLockSettings('all', service, lock);
      toast(lock ? `Locked ${what} for everyone but hosts (${r.changed}).` : `Unlocked ${what}.`, 'success');
      return true;
    } catch (e) {
      toast(apiErrorText(e), 'error');
      return false;
    }
  }

  /** Asks every other participant with a live microphone to mute it. */
  private async muteAll(): Promise<void> {
    const asks: Array<Promise<unknown>> = [];
    for (const p of this.o.room.remoteParticipants.values()) {
      const mic = p.getTrackPublication(Track.Source.Microphone);
      if (mic?.trackSid && !mic.isMuted && !this.o.roster.isHost(p)) asks.push(this.o.api.muteTrack(p.identity, mic.trackSid, true));
    }
    const results = await Promise.allSettled(asks);
    const failed = results.filter((r) => r.status === 'rejected').length;
    if (asks.length === 0) toast('Nobody else has a live microphone.', 'info');
    else if (failed) toast(`Muted ${asks.length - failed} of ${asks.length}.`, 'warning');
    else toast(asks.length === 1 ? 'Muted 1 microphone.' : `Muted ${asks.length} microphones.`, 'success');
  }

  /** Asks who waits every few seconds while the meeting runs; says when someone new arrives. */
  private async pollWaiting(): Promise<void> {
    if (!this.waiting || this.o.ended()) return;
    try {
      const r = await this.o.api.waitingList();
      this.showWaiting(r.users);
    } catch (e) {
      // Not (or no longer) a host, or the room is gone: stop asking.
      if (e instanceof ApiError && (e.httpStatus === 401 || e.httpStatus === 403)) return;
    }
    this.o.later(WAITING_POLL_MS, () => void this.pollWaiting());
  }

  private showWaiting(users: WaitingUser[]): void {
    this.waiting?.render(users);
    const fresh = users.filter((u) => !this.waitingSeen.has(u.user_id));
    if (fresh.length === 1) toast(`${fresh[0]!.name || fresh[0]!.user_id} is waiting to join. Open People to let them in.`, 'info');
    else if (fresh.length > 1) toast(`${fresh.length} people are waiting to join. Open People to let them in.`, 'info');
    this.waitingSeen = new Set(users.map((u) => u.user_id));
    this.o.onWaiting(users.length);
  }

  private async approveWaiting(userId: string): Promise<void> {
    try {
      const r = await this.o.api.approveWaiting(userId);
      const n = r.approved?.length ?? 0;
      if (userId === 'all') toast(n === 1 ? 'Let 1 person in.' : `Let ${n} people in.`, 'success');
      const rest = await this.o.api.waitingList();
      this.showWaiting(rest.users);
    } catch (e) {
      toast(apiErrorText(e), 'error');
    }
  }

  private async rejectWaiting(u: WaitingUser): Promise<void> {
    try {
      await this.o.api.removeParticipant(u.user_id, false);
      toast(`Declined ${u.name || u.user_id}.`, 'success');
      const rest = await this.o.api.waitingList();
      this.showWaiting(rest.users);
    } catch (e) {
      toast(apiErrorText(e), 'error');
    }
  }
}
