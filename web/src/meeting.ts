// The meeting: a livekit-client Room with frame encryption, our sealed data messages, the key
// check, tiles, chat, the participant list and host controls.
import {
  DisconnectReason,
  Participant,
  Room,
  RoomEvent,
  Track,
  VideoPresets,
  type RoomOptions,
} from 'livekit-client';

import { Api, ApiError, isWaiting, mediaUrl, type VerifyReply } from './api';
import { h, icon, replace } from './dom';
import type { SessionKeys } from './e2ee';
import { serverLocation } from './embed';
import { EpochKeyProvider } from './keyprovider';
import { MeetingKeys } from './meetingkeys';
import type { KeyStatus } from './keystatus';
import { WRONG_KEY_BANNER, keyShareBanner, recorderJoinText, recorderText, taskErrorText } from './messages';
import { RecorderModel, flagsFromVerify, type Transition } from './recorder';
import type { Layout, SessionStore } from './store';
import { CodeChip, E2eeBadge, SecurityPanel, brand } from './ui/badge';
import type { PrejoinResult } from './ui/prejoin';
import { RecorderUi } from './ui/recorder';
import { toast } from './ui/toasts';
import { Breakouts } from './breakout';
import { sessionSealer } from './content';
import { Controls, abilities, mediaErrorText, type Abilities } from './controls';
import { Roster } from './roster';
import { Stage } from './stage';
import { MeetingChat } from './chat';
import { MeetingData } from './data';
import { Moderation } from './moderation';
import { Panels } from './panels';

// Our sealed data messages need the key check to reach a participant whose key differs, so
// livekit-client's own data-channel encryption stays off: `e2ee` (not `encryption`) in the room
// options encrypts media frames only. Chat and profiles are sealed with our data key, with the
// sender bound in the AAD; the key check is a public one-way value (data.ts).
const CONNECT_TIMEOUT_MS = 20_000;
/** A recorder error explains the stop that follows it; no second notice for that stop. */
const QUIET_AFTER_ERROR_MS = 5_000;

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
  private readonly roster: Roster;
  private readonly stage: Stage;
  private readonly badge = new E2eeBadge();
  private readonly code = new CodeChip();
  private readonly security: SecurityPanel;
  private readonly banners: HTMLElement;
  private readonly wrongKeyBanner: HTMLElement;
  private readonly wrongKeyText: HTMLElement;
  private readonly keyShareBanner: HTMLElement;
  private readonly keyShareText: HTMLElement;
  private readonly reconnecting: HTMLElement;
  private readonly audioBanner: HTMLElement;
  private readonly chat: MeetingChat | null;
  private readonly data: MeetingData;
  private readonly panels: Panels;
  private readonly moderation: Moderation;
  private readonly recorder: RecorderModel;
  private readonly recorderUi: RecorderUi;
  private lastRecorderError = 0;
  private readonly e2eeRoom: boolean;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly controls: Controls;
  private readonly breakouts: Breakouts;
  private intentional = false;
  private ended = false;
  private readonly name: string;
  private readonly encrypted: boolean;
  private readonly may: Abilities;
  private readonly isAdmin: boolean;
  private unsubKey: (() => void) | null = null;
  private lastStatus = '';

  constructor(private readonly o: MeetingOptions) {
    const f = o.verify.room.features ?? {};
    this.encrypted = !!o.keys;

    this.may = abilities(o.verify);
    this.isAdmin = this.may.isAdmin;
    this.name = o.join.name;

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
        sessionId: o.verify.room.sid,
        serverKey: o.verify.e2ee.mode === 'server_key',
        initial: o.keys,
        provider: keyProvider,
        keyStatus: o.keyStatus,
        fetchCurrent: () => o.api.e2eeKey(),
        later: (ms, fn) => this.later(ms, fn),
        ended: () => this.ended,
        onSwitched: (k) => {
          this.showEpoch(k);
          this.data.announce();
        },
      });
    }
    this.room = new Room(options);
    this.roster = new Roster(this.room, { isAdmin: this.isAdmin, encrypted: this.encrypted, keyStatus: o.keyStatus });

    // ---- DOM ----
    this.stage = new Stage({
      room: this.room,
      roster: this.roster,
      layout: o.layout,
      onLayout: (layout) => void o.store?.updateSession(o.verify.room.sid, { layout }).catch(() => {}),
      ended: () => this.ended,
    });

    this.wrongKeyText = h('p', { 'data-testid': 'wrong-key-text' });
    const rekey = h(
      'button',
      { class: 'btn btn-light btn-sm', type: 'button', 'data-testid': o.verify.e2ee.mode === 'self_insert' ? 'reenter-key-button' : 'rejoin-key-button' },
      o.verify.e2ee.mode === 'self_insert' ? 'Enter the key again' : 'Rejoin',
    );
    rekey.addEventListener('click', () => void this.leave(true).then(() => o.onRekey()));
    this.rekeyBtn = rekey;
    this.wrongKeyBanner = h('div', { class: 'banner banner-bad', role: 'alert', hidden: true, 'data-testid': 'wrong-key-banner' }, icon('alert'), this.wrongKeyText, rekey);
    this.reconnecting = h(
      'div',
      { class: 'banner banner-warn', role: 'status', hidden: true, 'data-testid': 'reconnecting-indicator' },
      h('span', { class: 'spinner spinner-sm' }),
      h('p', null, 'Connection lost — reconnecting…'),
    );
    const enableAudio = h('button', { class: 'btn btn-light btn-sm', type: 'button', 'data-testid': 'enable-audio-button' }, 'Turn on sound');
    enableAudio.addEventListener('click', () => void this.room.startAudio().then(() => this.renderAudioBanner()));
    this.audioBanner = h('div', { class: 'banner banner-info', role: 'status', hidden: true }, icon('speaker'), h('p', null, 'Your browser blocked sound until you interact with the page.'), enableAudio);
    this.keyShareText = h('p', { 'data-testid': 'key-share-text' });
    this.keyShareBanner = h('div', { class: 'banner banner-warn', role: 'status', hidden: true, 'data-testid': 'key-share-banner' }, icon('alert'), this.keyShareText);
    this.breakouts = new Breakouts({
      api: o.api,
      verify: o.verify,
      isAdmin: !!o.verify.user.is_admin,
      encrypted: !!o.keys || o.verify.e2ee.enabled,
      people: () => this.roster.participants().map((p) => ({ identity: p.identity, name: this.roster.displayName(p.identity), isAdmin: this.roster.isHost(p) })),
      leave: () => this.leave(true),
      closePanel: () => this.panels.toggle(null),
    });
    this.banners = h('div', { class: 'banners' }, this.breakouts.banner.el, this.wrongKeyBanner, this.keyShareBanner, this.reconnecting, this.audioBanner);

    // Recording and live streaming: everyone sees the indicators; hosts of plain rooms get the
    // controls. In an end-to-end encrypted room the server cannot see the media, so recording and
    // broadcasting cannot exist there: no control is even created (and the server refuses).
    const e2eeRoom = this.encrypted || o.verify.e2ee.enabled || o.verify.e2ee.mode !== 'off' || !!f.end_to_end_encryption_features?.is_enabled;
    this.e2eeRoom = e2eeRoom;
    const rec = f.recording_features;
    const bc = f.external_broadcasting_features;
    this.recorder = new RecorderModel(flagsFromVerify(o.verify));
    this.recorderUi = new RecorderUi({
      model: this.recorder,
      canRecord: this.isAdmin && !e2eeRoom && !!rec?.is_allow && rec.is_allow_cloud !== false,
      canStream: this.isAdmin && !e2eeRoom && !!bc?.is_allow && bc.is_allow_rtmp !== false,
      actions: {
        setRecording: (start) => this.setRecording(start),
        startLive: (url, streamKey) => this.startLive(url, streamKey),
        stopLive: () => this.stopLive(),
      },
    });

    const conn = h('span', { class: 'conn-dot', 'data-testid': 'connection-state', 'data-state': 'connecting', title: 'Connecting' });
    this.connDot = conn;
    const topbar = h(
      'header',
      { class: 'topbar' },
      brand(),
      h('div', { class: 'topbar-title' }, h('span', { class: 'room-title', 'data-testid': 'room-title' }, o.verify.room.title || o.verify.room.room_id), conn, this.recorderUi.indicators),
      h('div', { class: 'topbar-right' }, this.badge.el, this.code.el, this.stage.layoutButton),
    );

    this.controls = new Controls({
      room: this.room,
      api: o.api,
      verify: o.verify,
      may: this.may,
      breakout: !!this.breakouts.panel,
      recorder: this.recorderUi.controls,
      togglePanel: (p) => this.panels.toggle(p),
      react: (name) => void this.data.sendReaction(name),
      leave: () => void this.leave(false),
      sync: () => this.sync(),
    });

    this.moderation = new Moderation({
      api: o.api,
      room: this.room,
      verify: o.verify,
      roster: this.roster,
      isAdmin: this.isAdmin,
      later: (ms, fn) => this.later(ms, fn),
      ended: () => this.ended,
      onWaiting: (n) => this.controls.setWaiting(n),
    });
    this.chat = this.may.chat
      ? new MeetingChat({
          room: this.room,
          keys: this.keys,
          encrypted: this.encrypted,
          store: o.store,
          historyKey: o.historyKey,
          sessionId: o.verify.room.sid,
          name: this.name,
          roster: this.roster,
          isOpen: () => this.panels.open === 'chat',
          closePanel: () => this.panels.toggle(null),
          onUnread: (n) => this.controls.setUnread(n),
        })
      : null;
    this.data = new MeetingData({
      room: this.room,
      keys: this.keys,
      encrypted: this.encrypted,
      keyStatus: o.keyStatus,
      name: this.name,
      roster: this.roster,
      ended: () => this.ended,
      to: {
        chat: this.chat,
        reaction: (identity, name) => this.stage.showReaction(identity, name),
        polls: (type, pollId) => this.panels.onPollMessage(type, pollId),
        breakout: (m) => this.breakouts.onMessage(m),
        recorder: (state) => this.recorderChanged(this.recorder.fromServer(state)),
        errorNotice: () => {
          this.lastRecorderError = Date.now();
        },
        sync: () => this.sync(),
      },
    });
    const keys = this.keys;
    this.panels = new Panels({
      api: o.api,
      room: this.room,
      roster: this.roster,
      identity: o.verify.user.user_id,
      isAdmin: this.isAdmin,
      encrypted: this.encrypted,
      polls: this.may.polls
        ? sessionSealer({
            encrypted: this.encrypted,
            passphrase: o.verify.e2ee.mode === 'self_insert' && keys ? () => keys.current : null,
            contentKey: o.contentKey,
            sessionId: o.verify.room.sid,
          })
        : null,
      chat: this.chat,
      moderation: this.moderation,
      breakouts: this.breakouts,
      onPolls: (visible, unanswered, open) => this.controls.setPolls(visible, unanswered, open),
      onToggle: (panel) => {
        this.el.classList.toggle('has-panel', panel !== null);
        this.sync();
      },
    });


    const mode = this.encrypted ? o.verify.e2ee.mode : 'off';
    this.security = new SecurityPanel(mode === 'server_key' || mode === 'self_insert' ? mode : 'off', () => this.security.toggle());
    this.badge.el.classList.add('clickable');
    this.badge.el.tabIndex = 0;
    this.badge.el.setAttribute('aria-haspopup', 'dialog');
    this.badge.el.addEventListener('click', () => this.security.toggle());
    this.badge.el.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        this.security.toggle();
      }
    });
    this.el = h('div', { class: 'meeting', 'data-testid': 'meeting' }, this.security.el, topbar, this.banners, h('div', { class: 'meeting-body' }, this.stage.el, this.panels.el), this.controls.el, this.stage.audioBox);
  }

  /** The meeting's keys (encrypted rooms): what seals what we send, and its epochs. */
  private readonly keys: MeetingKeys | null = null;
  private readonly worker: Worker | null = null;
  private connDot: HTMLElement;
  private rekeyBtn: HTMLElement;

  // ---------------------------------------------------------------------------------------
  // Lifecycle

  async start(): Promise<void> {
    const { o, room } = this;
    replace(o.root, this.el);
    document.title = `${o.verify.room.title || o.verify.room.room_id} · Enclave`;
    this.code.set(o.keys?.verificationCode ?? null);
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
    this.roster.setName(room.localParticipant.identity, this.name);
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
    const recording = recorderJoinText(this.recorder.state);
    if (recording) toast(recording, 'info');
    this.moderation.start();
    this.chat?.lockedAtJoin(!!o.verify.user.lock_chat, !!o.verify.user.lock_private_chat);
  }

  /** What a host's lock lets us publish changed. */
  private onOwnPermissions(): void {
    if (this.ended) return;
    this.controls.permissionsChanged();
    this.sync();
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
      .on(RoomEvent.ParticipantMetadataChanged, sync)
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
        this.sync();
        void this.refreshRecorder();
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
    this.recorderUi.destroy();
    // The SDK may still post to its worker while it tears down; stop it a moment later.
    const w = this.worker;
    if (w) setTimeout(() => w.terminate(), 2000);
  }

  /** Leaves; `quiet` skips the confirmation page (the caller shows the next screen). */
  async leave(quiet: boolean): Promise<void> {
    this.intentional = true;
    if (quiet) this.ended = true;
    await this.room.disconnect(true).catch(() => {});
    if (quiet) this.cleanup();
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.ended) fn();
    }, ms);
    this.timers.add(t);
  }

  // ---------------------------------------------------------------------------------------
  // Key epochs (server-generated-key rooms): MeetingKeys moves them on; the meeting shows them.

  private showEpoch(keys: SessionKeys): void {
    this.code.set(keys.verificationCode);
    this.security.set(this.o.keyStatus.status, keys.verificationCode, this.keys?.serverKey ? keys.generation : null);
    this.el.dataset.keyGeneration = String(keys.generation);
  }

  // ---------------------------------------------------------------------------------------
  // Recording and live streaming

  private async setRecording(start: boolean): Promise<void> {
    const t = this.recorder.begin('recording', start);
    if (!t) return;
    try {
      await this.o.api.recording(start ? 'START_RECORDING' : 'STOP_RECORDING');
      this.recorderChanged(this.recorder.done(t));
    } catch (e) {
      this.recorder.failed(t);
      toast(`${start ? 'Recording did not start.' : 'Recording did not stop.'} ${taskError(e)}`, 'error');
    }
  }

  /** Null once the server accepted, or why it did not (the dialog shows it too). */
  private async startLive(url: string, streamKey: string): Promise<string | null> {
    const t = this.recorder.begin('rtmp', true);
    if (!t) return 'A request to go live is already on its way.';
    try {
      await this.o.api.rtmp({ url, streamKey });
      this.recorderChanged(this.recorder.done(t));
      return null;
    } catch (e) {
      this.recorder.failed(t);
      const why = taskError(e);
      toast(`The live stream did not start. ${why}`, 'error');
      return why;
    }
  }

  private async stopLive(): Promise<void> {
    const t = this.recorder.begin('rtmp', false);
    if (!t) return;
    try {
      await this.o.api.rtmp(null);
      this.recorderChanged(this.recorder.done(t));
    } catch (e) {
      this.recorder.failed(t);
      toast(`The live stream did not stop. ${taskError(e)}`, 'error');
    }
  }

  /** Tells everyone what started or stopped (a stop right after an error was explained by it). */
  private recorderChanged(changes: Transition[]): void {
    if (this.ended) return;
    const quiet = Date.now() - this.lastRecorderError < QUIET_AFTER_ERROR_MS;
    for (const c of changes) {
      if (!c.on && quiet) continue;
      toast(recorderText(c.sink, c.on), 'info');
    }
  }

  /**
   * After a reconnect a state message may have been missed: ask the server again. Not in an
   * E2EE room: nothing can record there, and this reply would carry the session secret again.
   */
  private async refreshRecorder(): Promise<void> {
    if (this.e2eeRoom) return;
    const since = this.recorder.mark;
    try {
      const v = await this.o.api.verifyToken();
      if (isWaiting(v)) return;
      // Only the recorder flags are wanted from this reply; keep nothing of the secret.
      if (v.e2ee) delete v.e2ee.secret;
      if (!this.ended) this.recorderChanged(this.recorder.fromServer(flagsFromVerify(v), since));
    } catch {
      // The next state message will tell.
    }
  }

  // ---------------------------------------------------------------------------------------
  // Rendering

  /** Brings tiles, the participant list and the controls in line with the room. */
  private sync(): void {
    if (this.ended) return;
    this.stage.sync();
    this.controls.sync(this.panels.open);
    const all = this.roster.participants();
    this.moderation.noticeHands(all);
    this.controls.setCount(all.length);
    this.panels.sync(all);
  }

  private renderKeyState(): void {
    const s = this.o.keyStatus.summary();
    this.badge.set(s.status);
    const keys = this.keys?.current;
    this.security.set(s.status, keys?.verificationCode ?? null, this.keys?.serverKey && keys ? keys.generation : null);
    if (s.status !== this.lastStatus) {
      this.lastStatus = s.status;
      this.el.dataset.e2ee = s.status;
    }
    if (s.status === 'wrong-key') {
      // Our key matches nobody's: ours is the one to check.
      this.wrongKeyText.textContent = WRONG_KEY_BANNER;
      this.rekeyBtn.hidden = false;
      this.wrongKeyBanner.hidden = false;
    } else {
      this.wrongKeyBanner.hidden = true;
    }
    if (s.status === 'encrypted' && s.mismatched.length > 0) {
      // Some share our key and others differ: say how many, and name who differs.
      const total = 1 + this.room.remoteParticipants.size;
      this.keyShareText.textContent = keyShareBanner(1 + s.matched.length, Math.max(total, 1 + s.matched.length + s.mismatched.length), s.mismatched.map((id) => this.roster.displayName(id)));
      this.keyShareBanner.dataset.sharing = String(1 + s.matched.length);
      this.keyShareBanner.hidden = false;
    } else {
      this.keyShareBanner.hidden = true;
    }
    this.sync();
  }

  private renderAudioBanner(): void {
    this.audioBanner.hidden = this.room.canPlaybackAudio;
  }

  private setConn(state: 'connecting' | 'connected' | 'reconnecting'): void {
    this.connDot.dataset.state = state;
    this.connDot.title = state === 'connected' ? 'Connected' : state === 'reconnecting' ? 'Reconnecting' : 'Connecting';
    this.reconnecting.hidden = state !== 'reconnecting';
  }

}

function taskError(e: unknown): string {
  return e instanceof ApiError ? taskErrorText(e.serverMsg, e.httpStatus) : 'Something went wrong.';
}
