// The meeting: a livekit-client Room with frame encryption, and the parts that show and drive it:
// the stage (tiles and layout), the control bar, our data messages, the chat, the side panels,
// hosts' moderation, recording, and the key state (the E2EE badge, the code and the banners).
// This class builds them, passes the room's events on to them and keeps them in step (`sync`).
import { DisconnectReason, Room, RoomEvent, Track, VideoPresets, type Participant, type RoomOptions } from 'livekit-client';

import { mediaUrl, type Api, type VerifyReply } from './api';
import { Breakouts } from './breakout';
import { MeetingChat } from './chat';
import { sessionSealer } from './content';
import { MeetingContent } from './meetingcontent';
import { Controls, abilities, mediaErrorText, type Abilities } from './controls';
import { MeetingData, sealJson } from './data';
import { h, replace } from './dom';
import type { SessionKeys } from './e2ee';
import { serverLocation } from './embed';
import { EpochKeyProvider } from './keyprovider';
import type { KeyStatus } from './keystatus';
import { MeetingKeys } from './meetingkeys';
import { Moderation } from './moderation';
import { SharedNotepad } from './notepad/notepad';
import { TOPIC_NOTEPAD, isPresenter } from './protocol';
import { Panels } from './panels';
import { Recording } from './recording';
import { Roster } from './roster';
import { Stage } from './stage';
import type { Layout, SessionStore } from './store';
import { Banners } from './ui/banners';
import type { PrejoinResult } from './ui/prejoin';
import { toast } from './ui/toasts';
import { TopBar, type ConnState } from './ui/topbar';
import { Whiteboard } from './whiteboard/board';

// Our sealed data messages need the key check to reach a participant whose key differs, so
// livekit-client's own data-channel encryption stays off: `e2ee` (not `encryption`) in the room
// options encrypts media frames only. Chat and profiles are sealed with our data key, with the
// sender bound in the AAD; the key check is a public one-way value (data.ts).
const CONNECT_TIMEOUT_MS = 20_000;

export interface MeetingOptions {
  root: HTMLElement;
  verify: VerifyReply;
  api: Api;
  keys: SessionKeys | null;
  /**
   * Server-key rooms: seals the chat history this browser keeps (the same key at every
   * admission of this user in the session, so a reload opens what was kept before it).
   */
  historyKey: CryptoKey | null;
  /** Server-key rooms: seals what late joiners read too (poll texts); the same for everyone. */
  contentKey: CryptoKey | null;
  keyStatus: KeyStatus;
  /** Where the E2EE worker starts from (encrypted rooms; see embed.ts). */
  workerUrl: string;
  store: SessionStore | null;
  join: PrejoinResult;
  layout: Layout;
  /** The meeting is over for this page (left, removed, ended, lost). */
  onEnded: (reason: DisconnectReason | undefined, intentional: boolean) => void;
  /** Leave and enter another key (self-inserted key), or rejoin (server key). */
  onRekey: () => void;
}

export class Meeting {
  private readonly room: Room;
  private readonly el: HTMLElement;
  private readonly topbar: TopBar;
  private readonly banners: Banners;
  /** The meeting's keys (encrypted rooms): what seals what we send, and its epochs. */
  private readonly keys: MeetingKeys | null = null;
  private readonly worker: Worker | null = null;
  private readonly may: Abilities;
  private readonly encrypted: boolean;
  private readonly roster: Roster;
  private readonly stage: Stage;
  private readonly controls: Controls;
  private readonly data: MeetingData;
  private readonly chat: MeetingChat | null;
  private readonly panels: Panels;
  private readonly moderation: Moderation;
  private readonly breakouts: Breakouts;
  private readonly recording: Recording;
  /** The whiteboard's and the notepad's documents, files, and our right to change them. */
  readonly content: MeetingContent;
  /** The shared notepad (null: the room has it off). */
  private readonly notepad: SharedNotepad | null;
  /** Null when the room has the whiteboard off. */
  private readonly whiteboard: Whiteboard | null;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private intentional = false;
  private ended = false;
  private unsubKey: (() => void) | null = null;
  private lastStatus = '';

  constructor(private readonly o: MeetingOptions) {
    const v = o.verify;
    const f = v.room.features ?? {};
    const sid = v.room.sid;
    this.may = abilities(v);
    const isAdmin = this.may.isAdmin;
    this.encrypted = !!o.keys;
    const ended = () => this.ended;
    const later = (ms: number, fn: () => void) => this.later(ms, fn);

    const options: Partial<RoomOptions> = {
      adaptiveStream: true,
      dynacast: false,
      videoCaptureDefaults: {
        resolution: VideoPresets.h720.resolution,
        deviceId: o.join.devices.videoinput,
      },
      audioCaptureDefaults: {
        deviceId: o.join.devices.audioinput,
        echoCancellation: true,
        noiseSuppression: true,
        autoGainControl: true,
      },
      audioOutput: o.join.devices.audiooutput ? { deviceId: o.join.devices.audiooutput } : undefined,
      publishDefaults: { simulcast: true, videoCodec: 'vp8', stopMicTrackOnMute: false },
      stopLocalTrackOnUnpublish: true,
    };
    if (o.keys) {
      const keyProvider = new EpochKeyProvider();
      const worker = new Worker(o.workerUrl);
      // Deliberately the `e2ee` field: see the comment at the top.
      options.e2ee = { keyProvider, worker };
      this.worker = worker;
      this.keys = new MeetingKeys({
        sessionId: sid,
        serverKey: v.e2ee.mode === 'server_key',
        initial: o.keys,
        provider: keyProvider,
        keyStatus: o.keyStatus,
        fetchCurrent: () => o.api.e2eeKey(),
        later,
        ended,
        onSwitched: (k) => {
          this.showEpoch(k);
          this.data.announce();
        },
      });
    }
    const room = new Room(options);
    this.room = room;
    const roster = new Roster(room, { isAdmin, encrypted: this.encrypted, keyStatus: o.keyStatus });
    this.roster = roster;
    this.content = new MeetingContent({
      api: o.api,
      sealer: sessionSealer({
        encrypted: this.encrypted,
        passphrase: v.e2ee.mode === 'self_insert' && this.keys ? () => this.keys!.current : null,
        contentKey: o.contentKey,
        sessionId: sid,
      }),
      verify: v,
      presenting: () => isPresenter(room.localParticipant.metadata),
    });

    const wbFeatures = (f as { whiteboard_features?: { is_allow?: boolean } }).whiteboard_features;
    this.whiteboard =
      wbFeatures?.is_allow === false
        ? null
        : new Whiteboard({
            content: this.content,
            presenter: () => [room.localParticipant, ...room.remoteParticipants.values()].find((p) => isPresenter(p.metadata))?.identity ?? null,
            name: (id) => roster.displayName(id),
            onToggle: (open) => this.el.querySelector('.meeting-body')?.classList.toggle('has-board', open),
          });

    // ---- the parts ----
    this.stage = new Stage({
      room,
      roster,
      layout: o.layout,
      onLayout: (layout) => void o.store?.updateSession(sid, { layout }).catch(() => {}),
      ended,
    });
    this.breakouts = new Breakouts({
      api: o.api,
      verify: v,
      isAdmin,
      encrypted: !!o.keys || v.e2ee.enabled,
      people: () => roster.participants().map((p) => ({ identity: p.identity, name: roster.displayName(p.identity), isAdmin: roster.isHost(p) })),
      leave: () => this.leave(true),
      closePanel: () => this.panels.toggle(null),
    });
    this.banners = new Banners({
      selfInsert: v.e2ee.mode === 'self_insert',
      onRekey: () => void this.leave(true).then(() => o.onRekey()),
      onEnableAudio: () => void room.startAudio().then(() => this.renderAudioBanner()),
      first: this.breakouts.banner.el,
    });
    this.recording = new Recording({
      api: o.api,
      verify: v,
      isAdmin,
      e2eeRoom: this.encrypted || v.e2ee.enabled || v.e2ee.mode !== 'off' || !!f.end_to_end_encryption_features?.is_enabled,
      ended,
    });
    this.controls = new Controls({
      room,
      api: o.api,
      verify: v,
      may: this.may,
      breakout: !!this.breakouts.panel,
      recorder: this.recording.ui.controls,
      tools: this.whiteboard ? [this.whiteboard.button] : [],
      togglePanel: (p) => this.panels.toggle(p),
      react: (name) => void this.data.sendReaction(name),
      leave: () => void this.leave(false),
      sync: () => this.sync(),
    });
    this.moderation = new Moderation({ api: o.api, room, verify: v, roster, isAdmin, later, ended, onWaiting: (n) => this.controls.setWaiting(n) });
    this.chat = this.may.chat
      ? new MeetingChat({
          room,
          keys: this.keys,
          encrypted: this.encrypted,
          store: o.store,
          historyKey: o.historyKey,
          sessionId: sid,
          name: o.join.name,
          roster,
          isOpen: () => this.panels.open === 'chat',
          closePanel: () => this.panels.toggle(null),
          onUnread: (n) => this.controls.setUnread(n),
          // Files in chat: sealed with the session's content sealer, so late joiners open them too.
          files: f.chat_features?.is_allow_file_upload !== false ? { api: o.api, sealer: this.content.sealer, me: this.content.me, features: f } : null,
        })
      : null;
    this.chat?.fileLock(this.content.locks.chatFile);
    this.content.onLocks((l) => this.chat?.fileLock(l.chatFile));
    const keys = this.keys;
    this.notepad = this.may.notepad
      ? new SharedNotepad({
          content: this.content,
          name: o.join.name,
          nameOf: (id) => roster.displayName(id),
          present: () => [...room.remoteParticipants.values()].map((p) => ({ identity: p.identity, isAdmin: roster.isHost(p) })),
          send: async (v, to) => {
            const me = room.localParticipant;
            await me.publishData(await sealJson(this.keys, me.identity, v), { reliable: true, topic: TOPIC_NOTEPAD, destinationIdentities: to });
          },
          onClose: () => this.panels.toggle(null),
        })
      : null;
    this.panels = new Panels({
      api: o.api,
      room,
      roster,
      identity: v.user.user_id,
      isAdmin,
      encrypted: this.encrypted,
      polls: this.may.polls
        ? sessionSealer({
            encrypted: this.encrypted,
            passphrase: v.e2ee.mode === 'self_insert' && keys ? () => keys.current : null,
            contentKey: o.contentKey,
            sessionId: sid,
          })
        : null,
      chat: this.chat,
      moderation: this.moderation,
      breakouts: this.breakouts,
      notepad: this.notepad,
      onPolls: (visible, unanswered, open) => this.controls.setPolls(visible, unanswered, open),
      onToggle: (panel) => {
        this.el.classList.toggle('has-panel', panel !== null);
        this.sync();
      },
    });
    this.data = new MeetingData({
      room,
      keys: this.keys,
      encrypted: this.encrypted,
      keyStatus: o.keyStatus,
      name: o.join.name,
      roster,
      ended,
      to: {
        chat: this.chat,
        reaction: (identity, name) => this.stage.showReaction(identity, name),
        polls: (type, pollId) => this.panels.onPollMessage(type, pollId),
        breakout: (m) => this.breakouts.onMessage(m),
        recorder: (state) => this.recording.fromServer(state),
        errorNotice: () => this.recording.errorNoticed(),
        sync: () => this.sync(),
        content: (m) => this.content.onSystem(m),
        notepad: this.notepad ? (from, m) => this.notepad?.presence(from, m) : null,
      },
    });

    // ---- the page ----
    const mode = this.encrypted ? v.e2ee.mode : 'off';
    this.topbar = new TopBar({
      title: v.room.title || v.room.room_id,
      mode: mode === 'server_key' || mode === 'self_insert' ? mode : 'off',
      indicators: this.recording.ui.indicators,
      layoutButton: this.stage.layoutButton,
    });
    this.el = h(
      'div',
      { class: 'meeting', 'data-testid': 'meeting' },
      this.topbar.security.el,
      this.topbar.el,
      this.banners.el,
      h('div', { class: 'meeting-body' }, this.whiteboard?.el, this.stage.el, this.panels.el),
      this.controls.el,
      this.stage.audioBox,
    );
  }

  // ---------------------------------------------------------------------------------------
  // Lifecycle

  async start(): Promise<void> {
    const { o, room } = this;
    replace(o.root, this.el);
    document.title = `${o.verify.room.title || o.verify.room.room_id} · Enclave`;
    this.topbar.setCode(o.keys?.verificationCode ?? null);
    this.unsubKey = o.keyStatus.onChange(() => this.renderKeyState());
    this.renderKeyState();
    this.stage.start();
    this.wire();

    if (this.keys) {
      await this.keys.start();
      await room.setE2EEEnabled(true);
      this.showEpoch(this.keys.current);
    }

    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        room.connect(mediaUrl(o.verify.media.url, serverLocation(o.api.base, location)), o.verify.media.token, { autoSubscribe: true }),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('The media server did not answer in time.')), CONNECT_TIMEOUT_MS);
        }),
      ]);
    } catch (e) {
      clearTimeout(timer);
      this.ended = true;
      await room.disconnect().catch(() => {});
      this.cleanup();
      throw e instanceof Error ? e : new Error(String(e));
    }
    clearTimeout(timer);
    this.setConn('connected');
    // The key may have moved on between verifyToken and now (someone left): catch up.
    void this.keys?.fetch();
    this.roster.setName(room.localParticipant.identity, o.join.name);
    await this.chat?.restore();
    void this.panels.polls?.refresh();
    this.breakouts.start();
    this.sync();

    // Publish what the pre-join screen prepared, except what a host has locked.
    this.onOwnPermissions();
    await this.controls.publishPrepared(o.join);
    this.sync();
    this.data.announce();
    this.renderAudioBanner();
    const welcome = o.verify.room.welcome_message;
    if (welcome) this.chat?.welcome(welcome);
    void o.store?.updateSession(o.verify.room.sid, { devices: o.join.devices, layout: this.stage.layout }).catch(() => {});
    this.recording.joined();
    this.moderation.start();
    this.chat?.lockedAtJoin(!!o.verify.user.lock_chat, !!o.verify.user.lock_private_chat);
  }

  /** Leaves; `quiet` skips the confirmation page (the caller shows the next screen). */
  async leave(quiet: boolean): Promise<void> {
    this.intentional = true;
    if (quiet) this.ended = true;
    await this.room.disconnect(true).catch(() => {});
    if (quiet) this.cleanup();
  }

  private wire(): void {
    const r = this.room;
    const sync = () => this.sync();
    r.on(RoomEvent.ParticipantConnected, (p) => {
      this.sync();
      // A newcomer learns our key check (and name) even if it missed the broadcast.
      this.later(600, () => this.data.announce([p.identity]));
      this.later(2500, () => this.data.announce([p.identity]));
    })
      .on(RoomEvent.ParticipantDisconnected, (p) => {
        this.o.keyStatus.participantLeft(p.identity);
        this.roster.forget(p.identity);
        this.stage.participantLeft(p.identity);
        this.data.participantLeft(p.identity);
        this.notepad?.participantLeft(p.identity);
        this.sync();
      })
      .on(RoomEvent.TrackSubscribed, (track, pub, p) => {
        if (track.kind === Track.Kind.Audio) this.stage.attachAudio(track, pub, p);
        this.sync();
      })
      .on(RoomEvent.TrackUnsubscribed, (track, pub) => {
        this.stage.detachAudio(track, pub);
        this.sync();
      })
      .on(RoomEvent.TrackPublished, sync)
      .on(RoomEvent.TrackUnpublished, sync)
      .on(RoomEvent.TrackMuted, sync)
      .on(RoomEvent.TrackUnmuted, sync)
      .on(RoomEvent.LocalTrackPublished, sync)
      .on(RoomEvent.LocalTrackUnpublished, sync)
      .on(RoomEvent.ParticipantNameChanged, sync)
      .on(RoomEvent.ParticipantMetadataChanged, (_prev, p) => {
        if (p === this.room.localParticipant) this.content.presenterChanged();
        this.whiteboard?.presenterChanged();
        sync();
      })
      .on(RoomEvent.ParticipantPermissionsChanged, (_prev, p) => {
        if (p === this.room.localParticipant) this.onOwnPermissions();
        else sync();
      })
      .on(RoomEvent.TrackStreamStateChanged, sync)
      .on(RoomEvent.ActiveSpeakersChanged, (speakers: Participant[]) => this.stage.setSpeakers(speakers))
      .on(RoomEvent.DataReceived, (payload, participant, _kind, topic) => this.data.receive(payload, participant, topic))
      .on(RoomEvent.EncryptionError, (_err, participant?: Participant | string) => {
        const id = typeof participant === 'string' ? participant : participant?.identity;
        if (id && id !== r.localParticipant.identity) this.o.keyStatus.mediaDecryptionFailed(id);
      })
      .on(RoomEvent.ParticipantEncryptionStatusChanged, (enc, participant) => {
        if (participant && participant.identity !== r.localParticipant.identity && this.encrypted) {
          this.o.keyStatus.participantEncryption(participant.identity, enc);
        }
      })
      .on(RoomEvent.Reconnecting, () => this.setConn('reconnecting'))
      .on(RoomEvent.SignalReconnecting, () => this.setConn('reconnecting'))
      .on(RoomEvent.Reconnected, () => {
        this.setConn('connected');
        void this.keys?.fetch();
        this.data.reconnected();
        this.content.resync();
        this.sync();
        void this.recording.refresh();
      })
      .on(RoomEvent.AudioPlaybackStatusChanged, () => this.renderAudioBanner())
      .on(RoomEvent.MediaDevicesError, (e) => toast(mediaErrorText(e), 'warning'))
      .on(RoomEvent.Disconnected, (reason) => this.onDisconnected(reason));
  }

  private onDisconnected(reason?: DisconnectReason): void {
    if (this.ended) return;
    this.ended = true;
    this.cleanup();
    if (reason === DisconnectReason.ROOM_DELETED || reason === DisconnectReason.ROOM_CLOSED) {
      void this.o.store?.deleteSession(this.o.verify.room.sid).catch(() => {});
    }
    this.o.onEnded(reason, this.intentional);
  }

  private cleanup(): void {
    this.breakouts.stop();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.unsubKey?.();
    this.stage.destroy();
    this.o.keyStatus.reset();
    this.keys?.clear();
    this.recording.destroy();
    this.notepad?.destroy();
    this.whiteboard?.destroy();
    this.content.close();
    // The SDK may still post to its worker while it tears down; stop it a moment later.
    const w = this.worker;
    if (w) setTimeout(() => w.terminate(), 2000);
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.ended) fn();
    }, ms);
    this.timers.add(t);
  }

  // ---------------------------------------------------------------------------------------
  // Keeping the parts in step

  /** Brings tiles, the controls, the participant list and the panels in line with the room. */
  private sync(): void {
    if (this.ended) return;
    this.stage.sync();
    this.controls.sync(this.panels.open);
    const all = this.roster.participants();
    this.moderation.noticeHands(all);
    this.controls.setCount(all.length);
    this.panels.sync(all);
  }

  /** What a host's lock lets us publish changed. */
  private onOwnPermissions(): void {
    if (this.ended) return;
    this.controls.permissionsChanged();
    this.sync();
  }

  /** Key epochs (server-generated-key rooms): MeetingKeys moves them on; the meeting shows them. */
  private showEpoch(keys: SessionKeys): void {
    this.topbar.setCode(keys.verificationCode);
    this.topbar.security.set(this.o.keyStatus.status, keys.verificationCode, this.keys?.serverKey ? keys.generation : null);
    this.el.dataset.keyGeneration = String(keys.generation);
  }

  private renderKeyState(): void {
    const s = this.o.keyStatus.summary();
    const keys = this.keys?.current;
    this.topbar.setKeyStatus(s.status, keys?.verificationCode ?? null, this.keys?.serverKey && keys ? keys.generation : null);
    if (s.status !== this.lastStatus) {
      this.lastStatus = s.status;
      this.el.dataset.e2ee = s.status;
    }
    this.banners.keyState(s, this.room.remoteParticipants.size, (id) => this.roster.displayName(id));
    this.sync();
  }

  private renderAudioBanner(): void {
    this.banners.setAudioBlocked(!this.room.canPlaybackAudio);
  }

  private setConn(state: ConnState): void {
    this.topbar.setConn(state);
    this.banners.setReconnecting(state === 'reconnecting');
  }
}
