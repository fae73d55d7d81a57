// The pre-join screen: name, camera and microphone with a live preview and a level meter,
// the encryption of the meeting in one line, the key prompt of a self-inserted-key room, join.
import {
  LocalAudioTrack,
  LocalVideoTrack,
  Room,
  createAudioAnalyser,
  createLocalAudioTrack,
  createLocalVideoTrack,
  supportsAudioOutputSelection,
} from 'livekit-client';

import { h, hueOf, icon, initials, replace } from '../dom';
import { e2eeModeLine, type E2eeMode } from '../messages';
import { MAX_NAME_CHARS, cleanName } from '../protocol';
import type { DeviceChoice } from '../store';
import { revealButton } from './parts';

export interface PrejoinResult {
  name: string;
  video: LocalVideoTrack | null;
  audio: LocalAudioTrack | null;
  devices: DeviceChoice;
}

export interface PrejoinOptions {
  title: string;
  defaultName: string;
  isAdmin: boolean;
  e2eeEnabled: boolean;
  mode: E2eeMode;
  cameraAllowed: boolean;
  cameraNote: string | null;
  /** "This meeting is being recorded." and the like, when the server records or streams it. */
  recorderNote: string | null;
  startMuted: boolean;
  /** False for hidden observers, who publish nothing. */
  micAllowed: boolean;
  saved: DeviceChoice | undefined;
  /** Whether keys are already derived (server key done, or a self-inserted key entered). */
  keyReady: () => boolean;
  /** Self-inserted key: derive from the passphrase. Resolves when done; throws on failure. */
  submitKey: (passphrase: string) => Promise<void>;
  /** Self-inserted key: forget the derived keys (to enter another key). */
  clearKey: () => void;
  /** The verification code once keys exist. */
  code: () => string | null;
  /** Resolves when the server key has been derived (server_key mode). */
  keyWork: Promise<void> | null;
  /**
   * Joins by itself once the preview runs and the keys are ready: the page was opened by a
   * move between a main room and a breakout room, which the person chose already. A typed
   * passphrase is still asked for.
   */
  autoJoin?: boolean;
  onJoin: (r: PrejoinResult) => Promise<void>;
}

type Kind = 'videoinput' | 'audioinput' | 'audiooutput';

export class Prejoin {
  readonly el: HTMLElement;
  private video: LocalVideoTrack | null = null;
  private audio: LocalAudioTrack | null = null;
  private cameraOn: boolean;
  private micOn: boolean;
  private devices: DeviceChoice;
  private meterStop: (() => void) | null = null;
  private handedOver = false;
  private joining = false;
  /** The camera and microphone are still opening: joining now would join without them. */
  private devicesStarting = false;
  private destroyed = false;

  private readonly previewBox: HTMLElement;
  private readonly videoEl: HTMLVideoElement;
  private readonly avatar: HTMLElement;
  private readonly meterFill: HTMLElement;
  private readonly camBtn: HTMLButtonElement;
  private readonly micBtn: HTMLButtonElement;
  private readonly nameInput: HTMLInputElement;
  private readonly selects: Record<Kind, HTMLSelectElement>;
  private readonly deviceNote: HTMLElement;
  private readonly keyArea: HTMLElement;
  private readonly joinBtn: HTMLButtonElement;
  private readonly joinNote: HTMLElement;
  private keyInput: HTMLInputElement | null = null;
  private keyBusy = false;
  private readonly onDeviceChange = () => void this.refreshDevices();

  constructor(private readonly o: PrejoinOptions) {
    this.devices = { ...o.saved };
    this.cameraOn = o.cameraAllowed && (o.saved?.camera ?? true);
    this.micOn = o.startMuted ? false : (o.saved?.microphone ?? true);

    this.videoEl = h('video', { class: 'preview-video mirrored', autoplay: true, muted: true, playsinline: true, 'aria-label': 'Camera preview' });
    this.videoEl.muted = true;
    const name = cleanName(o.defaultName) || 'Guest';
    this.avatar = h('div', { class: 'avatar avatar-xl', style: `--hue:${hueOf(name)}` }, initials(name));
    this.meterFill = h('div', { class: 'meter-fill' });
    this.camBtn = h('button', { class: 'round-btn', type: 'button', 'data-testid': 'prejoin-camera-toggle' });
    this.micBtn = h('button', { class: 'round-btn', type: 'button', 'data-testid': 'prejoin-mic-toggle' });
    this.camBtn.addEventListener('click', () => void this.toggleCamera());
    this.micBtn.addEventListener('click', () => void this.toggleMic());
    this.previewBox = h(
      'div',
      { class: 'preview' },
      this.videoEl,
      h('div', { class: 'preview-avatar' }, this.avatar),
      h('div', { class: 'preview-controls' }, this.micBtn, this.camBtn),
    );

    this.nameInput = h('input', {
      id: 'pj-name',
      class: 'input',
      type: 'text',
      value: name,
      maxlength: MAX_NAME_CHARS,
      autocomplete: 'name',
      'data-testid': 'display-name-input',
      required: true,
    });
    this.nameInput.addEventListener('input', () => {
      const n = cleanName(this.nameInput.value) || '?';
      this.avatar.textContent = initials(n);
      this.avatar.style.setProperty('--hue', String(hueOf(n)));
      this.updateJoin();
    });

    const select = (kind: Kind, testid: string, id: string) => {
      const s = h('select', { id, class: 'input', 'data-testid': testid });
      s.addEventListener('change', () => void this.chooseDevice(kind, s.value));
      return s;
    };
    this.selects = {
      videoinput: select('videoinput', 'camera-select', 'pj-cam'),
      audioinput: select('audioinput', 'mic-select', 'pj-mic'),
      audiooutput: select('audiooutput', 'speaker-select', 'pj-spk'),
    };
    this.deviceNote = h('p', { class: 'note', role: 'status', hidden: true });
    this.keyArea = h('div', { class: 'key-area' });
    this.joinBtn = h('button', { class: 'btn btn-primary btn-lg btn-block', type: 'submit', 'data-testid': 'join-button' }, 'Join meeting');
    this.joinNote = h('p', { class: 'muted small join-note', role: 'status' });

    const devices = h(
      'section',
      { class: 'prejoin-devices', 'aria-label': 'Devices' },
      h('div', { class: 'field' }, h('label', { for: 'pj-cam' }, 'Camera'), this.selects.videoinput),
      h(
        'div',
        { class: 'field' },
        h('label', { for: 'pj-mic' }, 'Microphone'),
        this.selects.audioinput,
        h('div', { class: 'meter', 'aria-hidden': 'true', 'data-testid': 'mic-level' }, this.meterFill),
      ),
      supportsAudioOutputSelection()
        ? h('div', { class: 'field' }, h('label', { for: 'pj-spk' }, 'Speaker'), this.selects.audiooutput)
        : null,
    );
    const form = h(
      'form',
      { class: 'prejoin-form', novalidate: true },
      h('h1', null, 'Ready to join?'),
      h('p', { class: 'muted room-line', 'data-testid': 'room-title' }, o.title),
      h('div', { class: 'field' }, h('label', { for: 'pj-name' }, 'Your name'), this.nameInput),
      this.encryptionCard(),
      o.recorderNote
        ? h('p', { class: 'rec-note', 'data-testid': 'prejoin-recording-note' }, h('span', { class: 'ind-dot', 'aria-hidden': 'true' }), h('span', null, o.recorderNote))
        : null,
      this.joinBtn,
      this.joinNote,
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.join();
    });

    this.el = h(
      'main',
      { class: 'prejoin', 'data-testid': 'prejoin' },
      h('section', { class: 'prejoin-media' }, this.previewBox, this.deviceNote),
      devices,
      h('section', { class: 'prejoin-side card' }, form),
    );

    this.renderToggles();
    this.updateJoin();
    navigator.mediaDevices?.addEventListener?.('devicechange', this.onDeviceChange);
    if (o.keyWork) {
      o.keyWork.then(
        () => {
          this.renderKeyArea();
          this.updateJoin();
        },
        () => this.updateJoin(),
      );
    }
  }

  /** Starts the preview (after the element is in the page). */
  async start(): Promise<void> {
    this.devicesStarting = true;
    this.updateJoin();
    try {
      await Promise.all([this.cameraOn ? this.startVideo() : null, this.micOn ? this.startAudio() : null]);
    } finally {
      this.devicesStarting = false;
      this.updateJoin();
    }
    await this.refreshDevices();
    if (this.o.mode === 'self_insert' && this.o.e2eeEnabled && !this.o.keyReady()) this.keyInput?.focus();
    else this.joinBtn.focus();
    if (this.o.autoJoin && !(this.o.mode === 'self_insert' && this.o.e2eeEnabled)) {
      await this.o.keyWork?.catch(() => {});
      if (!this.destroyed && !this.needsKey()) await this.join();
    }
  }

  private encryptionCard(): HTMLElement {
    const on = this.o.e2eeEnabled && this.o.mode !== 'off';
    this.renderKeyArea();
    return h(
      'div',
      { class: `enc-card ${on ? 'enc-on' : 'enc-off'}`, 'data-testid': 'e2ee-explainer' },
      h('div', { class: 'enc-head' }, icon(on ? 'lock' : 'unlock'), h('span', null, e2eeModeLine(this.o.mode, this.o.e2eeEnabled))),
      on ? this.keyArea : null,
    );
  }

  private renderKeyArea(): void {
    if (!this.o.e2eeEnabled || this.o.mode === 'off') return;
    const code = this.o.code();
    if (this.o.keyReady() && code) {
      const parts: Array<HTMLElement | string> = [
        h('span', { class: 'muted' }, 'Verification code '),
        h('strong', { class: 'code-inline' }, code),
      ];
      const change =
        this.o.mode === 'self_insert'
          ? h('button', { class: 'link-btn', type: 'button', 'data-testid': 'e2ee-key-change' }, 'Change key')
          : null;
      change?.addEventListener('click', () => {
        this.o.clearKey();
        const form = this.keyForm();
        replace(this.keyArea, form);
        form.querySelector('input')?.focus();
        this.updateJoin();
      });
      replace(
        this.keyArea,
        h('p', { class: 'key-ok', 'data-testid': 'e2ee-key-ready' }, icon('shield'), h('span', null, ...parts), change),
        h('p', { class: 'muted small' }, 'Everyone with the same key sees the same code: compare it once you are in.'),
      );
      this.keyInput = null;
      return;
    }
    if (this.o.mode === 'server_key') {
      replace(this.keyArea, h('p', { class: 'muted small key-busy' }, h('span', { class: 'spinner spinner-sm' }), 'Deriving this session’s keys…'));
      return;
    }
    replace(this.keyArea, this.keyForm());
  }

  private keyForm(): HTMLElement {
    const input = h('input', {
      id: 'pj-key',
      class: 'input',
      type: 'password',
      autocomplete: 'off',
      autocapitalize: 'off',
      spellcheck: 'false',
      'data-testid': 'e2ee-key-input',
      'aria-describedby': 'pj-key-help',
    });
    this.keyInput = input;
    const show = revealButton(input, 'Show key');
    const submit = h('button', { class: 'btn btn-secondary', type: 'button', 'data-testid': 'e2ee-key-submit' }, 'Use key');
    submit.addEventListener('click', () => void this.useKey());
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        void this.useKey();
      }
    });
    input.addEventListener('input', () => this.updateJoin());
    return h(
      'div',
      { class: 'field key-field' },
      h('label', { for: 'pj-key' }, 'Meeting key'),
      h('div', { class: 'key-row' }, h('div', { class: 'input-wrap' }, input, show), submit),
      h('p', { id: 'pj-key-help', class: 'muted small' }, 'Shared with you outside this app. It stays in this browser: it is never sent to the server.'),
    );
  }

  private async useKey(): Promise<boolean> {
    const input = this.keyInput;
    if (!input || this.keyBusy) return this.o.keyReady();
    const value = input.value;
    if (!value) {
      input.focus();
      this.joinNote.textContent = 'Enter the meeting key first.';
      return false;
    }
    this.keyBusy = true;
    this.updateJoin();
    const area = this.keyArea;
    const busy = h('p', { class: 'muted small key-busy' }, h('span', { class: 'spinner spinner-sm' }), 'Deriving keys…');
    area.appendChild(busy);
    try {
      await this.o.submitKey(value);
      input.value = '';
      this.renderKeyArea();
      return true;
    } catch {
      busy.remove();
      this.joinNote.textContent = 'The key could not be used. Try again.';
      return false;
    } finally {
      this.keyBusy = false;
      this.updateJoin();
    }
  }

  private needsKey(): boolean {
    return this.o.e2eeEnabled && this.o.mode !== 'off' && !this.o.keyReady();
  }

  private updateJoin(): void {
    const name = cleanName(this.nameInput.value);
    let reason = '';
    if (!name) reason = 'Enter your name.';
    else if (this.devicesStarting) reason = 'Starting your camera and microphone…';
    else if (this.needsKey()) {
      if (this.o.mode === 'self_insert') {
        if (!this.keyInput?.value) reason = 'Enter the meeting key to join.';
        else if (this.keyBusy) reason = 'Deriving keys…';
      } else reason = 'Deriving this session’s keys…';
    }
    this.joinBtn.disabled = this.joining || reason !== '';
    if (!this.joining) this.joinNote.textContent = reason;
  }

  private renderToggles(): void {
    replace(this.camBtn, icon(this.cameraOn ? 'camera' : 'cameraOff'));
    this.camBtn.setAttribute('aria-pressed', String(this.cameraOn));
    this.camBtn.setAttribute('aria-label', this.cameraOn ? 'Turn camera off' : 'Turn camera on');
    this.camBtn.title = this.o.cameraAllowed ? (this.cameraOn ? 'Turn camera off' : 'Turn camera on') : (this.o.cameraNote ?? 'Camera not allowed');
    this.camBtn.classList.toggle('off', !this.cameraOn);
    this.camBtn.disabled = !this.o.cameraAllowed;
    replace(this.micBtn, icon(this.micOn ? 'mic' : 'micOff'));
    this.micBtn.setAttribute('aria-pressed', String(this.micOn));
    this.micBtn.setAttribute('aria-label', this.micOn ? 'Turn microphone off' : 'Turn microphone on');
    this.micBtn.title = this.micOn ? 'Turn microphone off' : 'Turn microphone on';
    this.micBtn.classList.toggle('off', !this.micOn);
    this.micBtn.disabled = !this.o.micAllowed;
    this.previewBox.classList.toggle('has-video', this.cameraOn && !!this.video);
    this.selects.videoinput.disabled = !this.o.cameraAllowed;
    if (!this.o.cameraAllowed && this.o.cameraNote) this.note(this.o.cameraNote);
  }

  private note(text: string | null): void {
    this.deviceNote.textContent = text ?? '';
    this.deviceNote.hidden = !text;
  }

  private async startVideo(): Promise<void> {
    try {
      const t = await createLocalVideoTrack({
        deviceId: this.devices.videoinput ? { ideal: this.devices.videoinput } : undefined,
        resolution: { width: 1280, height: 720, frameRate: 30 },
      });
      if (this.destroyed || !this.cameraOn) {
        t.stop();
        return;
      }
      this.video?.stop();
      this.video = t;
      t.attach(this.videoEl);
      const id = t.mediaStreamTrack.getSettings().deviceId;
      if (id) this.devices.videoinput = id;
    } catch (e) {
      this.cameraOn = false;
      this.note(mediaErrorText('camera', e));
    }
    this.renderToggles();
  }

  private stopVideo(): void {
    if (this.video) {
      this.video.detach(this.videoEl);
      this.video.stop();
      this.video = null;
    }
  }

  private async startAudio(): Promise<void> {
    try {
      const t = await createLocalAudioTrack({
        deviceId: this.devices.audioinput ? { ideal: this.devices.audioinput } : undefined,
        echoCancellation: true,
        noiseSuppression: true,
        autoGainControl: true,
      });
      if (this.destroyed || !this.micOn) {
        t.stop();
        return;
      }
      this.stopAudio();
      this.audio = t;
      const id = t.mediaStreamTrack.getSettings().deviceId;
      if (id) this.devices.audioinput = id;
      this.startMeter(t);
    } catch (e) {
      this.micOn = false;
      this.note(mediaErrorText('microphone', e));
    }
    this.renderToggles();
  }

  private stopAudio(): void {
    this.meterStop?.();
    this.meterStop = null;
    if (this.audio) {
      this.audio.stop();
      this.audio = null;
    }
    this.meterFill.style.transform = 'scaleX(0)';
  }

  private startMeter(t: LocalAudioTrack): void {
    let analyser: ReturnType<typeof createAudioAnalyser> | null = null;
    try {
      analyser = createAudioAnalyser(t, { cloneTrack: true, smoothingTimeConstant: 0.6 });
    } catch {
      return;
    }
    let raf = 0;
    let level = 0;
    const tick = () => {
      const v = analyser ? analyser.calculateVolume() : 0;
      // The RMS of speech is small; scale it so that normal speech fills most of the bar.
      level = Math.max(v * 4, level * 0.85);
      this.meterFill.style.transform = `scaleX(${Math.min(1, level).toFixed(3)})`;
      raf = requestAnimationFrame(tick);
    };
    raf = requestAnimationFrame(tick);
    this.meterStop = () => {
      cancelAnimationFrame(raf);
      void analyser?.cleanup();
      analyser = null;
    };
  }

  private async toggleCamera(): Promise<void> {
    if (!this.o.cameraAllowed) return;
    this.cameraOn = !this.cameraOn;
    this.note(null);
    if (this.cameraOn) await this.startVideo();
    else this.stopVideo();
    this.renderToggles();
  }

  private async toggleMic(): Promise<void> {
    if (!this.o.micAllowed) return;
    this.micOn = !this.micOn;
    this.note(null);
    if (this.micOn) await this.startAudio();
    else this.stopAudio();
    this.renderToggles();
  }

  private async chooseDevice(kind: Kind, deviceId: string): Promise<void> {
    this.devices[kind] = deviceId;
    if (kind === 'videoinput' && this.cameraOn) {
      this.stopVideo();
      await this.startVideo();
    } else if (kind === 'audioinput' && this.micOn) {
      this.stopAudio();
      await this.startAudio();
    } else if (kind === 'audiooutput') {
      const el = this.videoEl as HTMLVideoElement & { setSinkId?: (id: string) => Promise<void> };
      await el.setSinkId?.(deviceId).catch(() => {});
    }
  }

  private async refreshDevices(): Promise<void> {
    for (const kind of ['videoinput', 'audioinput', 'audiooutput'] as Kind[]) {
      let list: MediaDeviceInfo[] = [];
      try {
        list = await Room.getLocalDevices(kind, false);
      } catch {
        list = [];
      }
      const s = this.selects[kind];
      const current = this.devices[kind] ?? '';
      const opts = list
        .filter((d) => d.deviceId)
        .map((d, i) =>
          h('option', { value: d.deviceId }, d.label || `${kind === 'videoinput' ? 'Camera' : kind === 'audioinput' ? 'Microphone' : 'Speaker'} ${i + 1}`),
        );
      if (opts.length === 0) {
        replace(s, h('option', { value: '' }, kind === 'videoinput' ? 'No camera found' : kind === 'audioinput' ? 'No microphone found' : 'Default'));
        s.disabled = true;
        continue;
      }
      replace(s, opts);
      s.disabled = kind === 'videoinput' && !this.o.cameraAllowed;
      if (current && list.some((d) => d.deviceId === current)) s.value = current;
    }
  }

  private async join(): Promise<void> {
    if (this.joining) return;
    if (this.needsKey() && this.o.mode === 'self_insert') {
      if (!(await this.useKey())) return;
    }
    if (this.needsKey() || this.devicesStarting) return;
    const name = cleanName(this.nameInput.value);
    if (!name) {
      this.nameInput.focus();
      return;
    }
    this.joining = true;
    this.joinBtn.disabled = true;
    replace(this.joinBtn, h('span', { class: 'spinner spinner-sm' }), 'Joining…');
    this.joinNote.textContent = '';
    this.meterStop?.();
    this.meterStop = null;
    this.handedOver = true;
    try {
      await this.o.onJoin({
        name,
        video: this.cameraOn ? this.video : null,
        audio: this.micOn ? this.audio : null,
        devices: { ...this.devices, camera: this.cameraOn, microphone: this.micOn },
      });
    } catch (e) {
      // The meeting screen reports its own errors; restore the button if we are still shown.
      this.handedOver = false;
      this.joining = false;
      replace(this.joinBtn, 'Join meeting');
      this.updateJoin();
      this.joinNote.textContent = e instanceof Error ? e.message : 'Could not join.';
      if (this.audio && this.micOn) this.startMeter(this.audio);
    }
  }

  destroy(): void {
    this.destroyed = true;
    navigator.mediaDevices?.removeEventListener?.('devicechange', this.onDeviceChange);
    this.meterStop?.();
    if (!this.handedOver) {
      this.stopVideo();
      this.stopAudio();
    } else {
      this.video?.detach(this.videoEl);
    }
  }
}

function mediaErrorText(what: 'camera' | 'microphone', e: unknown): string {
  const name = e instanceof Error ? e.name : '';
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return `Access to the ${what} was blocked. Allow it in your browser's site settings to use it.`;
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return `No ${what} was found.`;
  if (name === 'NotReadableError') return `The ${what} is in use by another application.`;
  return `The ${what} could not be started.`;
}
