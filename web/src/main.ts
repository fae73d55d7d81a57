// Enclave's web client. Flow: take the join token from `?access_token=` (and out of the address
// bar) → verifyToken → unsupported browser? → pre-join (devices, key) → meeting → left / ended.
import {
  LocalAudioTrack,
  LocalVideoTrack,
  createLocalAudioTrack,
  createLocalVideoTrack,
  isBrowserSupported,
  isE2EESupported,
  DisconnectReason,
  setLogLevel,
} from 'livekit-client';

import { Api, ApiError, isWaiting, validateVerifyReply, type VerifyReply, type WaitingReply } from './api';
import { h } from './dom';
import { SessionKeys, deriveContentKey, deriveHistoryKey } from './e2ee';
import { ENTER_FRAGMENT, addressWithToken } from './breakout';
import { e2eeWorkerUrl, mountPoint, serverBase } from './embed';
import { KeyStatus } from './keystatus';
import { Meeting } from './meeting';
import { WAITING_REJECTED, describeApiError, disconnectText, recorderJoinText } from './messages';
import { renewDelayMs } from './protocol';
import { flagsFromVerify } from './recorder';
import { fetchTlsInfo, planStart, type LocationParts } from './secure';
import { SessionStore, type DeviceChoice, type Layout } from './store';
import { CodeChip, E2eeBadge, brand } from './ui/badge';
import { caDownloadNote, insecureContextPage, loadingPage, messagePage } from './ui/pages';
import { Prejoin, type PrejoinResult } from './ui/prejoin';
import { toast } from './ui/toasts';
import { WaitingPage } from './ui/waiting';

const MAX_TIMEOUT = 2 ** 31 - 1;
/** How often the waiting page asks whether a host has let this guest in. */
const WAITING_ASK_MS = 2500;

/**
 * Reads the join token and removes it from the address bar (it stays in memory only), with the
 * fragment that asks to join at once (a move between a main and a breakout room).
 */
function takeToken(): { token: string | null; enter: boolean } {
  const url = new URL(location.href);
  const token = url.searchParams.get('access_token');
  const enter = url.hash === `#${ENTER_FRAGMENT}`;
  if (url.searchParams.has('access_token') || enter) {
    url.searchParams.delete('access_token');
    history.replaceState(history.state, '', url.pathname + (url.search === '?' ? '' : url.search) + (enter ? '' : url.hash));
  }
  return { token: token && token.trim() ? token.trim() : null, enter };
}

class App {
  private readonly api: Api;
  private verify: VerifyReply | null = null;
  private keys: SessionKeys | null = null;
  /** Server-key rooms: seals the chat history this page keeps (see Meeting). */
  private historyKey: CryptoKey | null = null;
  /** Server-key rooms: seals what late joiners read too (poll texts). */
  private contentKey: CryptoKey | null = null;
  private keyStatus = new KeyStatus(false);
  private keyWork: Promise<void> | null = null;
  private store: SessionStore | null = null;
  private renewTimer: ReturnType<typeof setTimeout> | undefined;
  private prejoin: Prejoin | null = null;
  private lastJoin: DeviceChoice | null = null;
  private lastName: string | null = null;
  private readonly badge = new E2eeBadge();
  private readonly code = new CodeChip();
  /** Where the E2EE worker starts from, once known (see embed.ts). */
  private workerUrl: string | null = null;

  constructor(
    private readonly root: HTMLElement,
    token: string,
    base: string,
    /** Opened by a move between a main and a breakout room: join at once (once). */
    private enter = false,
  ) {
    this.api = new Api(token, base);
    this.keyStatus.onChange(() => this.renderBadge());
  }

  async start(): Promise<void> {
    loadingPage(this.root, 'Checking your invitation…');
    const storeP = SessionStore.open();
    const ok = await this.loadVerify();
    this.store = await storeP;
    if (!ok || !this.verify) return;
    void this.store?.pruneStale(this.verify.room.sid).catch(() => {});
    if (!isBrowserSupported() || (this.verify.e2ee.enabled && !isE2EESupported())) {
      this.unsupported(this.verify.e2ee.enabled);
      return;
    }
    await this.showPrejoin();
  }

  /** verifyToken; on failure shows the error page and returns false. */
  private async loadVerify(): Promise<boolean> {
    let reply: VerifyReply | WaitingReply;
    try {
      reply = await this.api.verifyToken();
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(0, 'network error');
      this.errorPage(err.serverMsg, err.httpStatus);
      return false;
    }
    if (isWaiting(reply)) {
      const admitted = await this.waitForApproval(reply);
      if (!admitted) return false;
      reply = admitted;
    }
    const v = reply;
    const invalid = validateVerifyReply(v);
    if (invalid) {
      this.errorPage('bad-reply', 500, `The server's reply was incomplete (${invalid}).`);
      return false;
    }
    const previousSid = this.verify?.room.sid;
    const secret = v.e2ee.secret;
    const historySecret = v.e2ee.history_secret;
    const contentSecret = v.e2ee.content_secret;
    // Keep nothing of the secrets but the keys derived from them.
    delete v.e2ee.secret;
    delete v.e2ee.history_secret;
    delete v.e2ee.content_secret;
    this.verify = v;
    this.scheduleRenew(v.expires_at);
    const encrypted = v.e2ee.enabled && v.e2ee.mode !== 'off';
    if (previousSid !== v.room.sid || this.keyStatus.encrypted !== encrypted) {
      // A new session (or the first): new keys.
      this.keys?.wipe();
      this.keys = null;
      this.historyKey = null;
      this.contentKey = null;
      this.keyStatus = new KeyStatus(encrypted);
      this.keyStatus.onChange(() => this.renderBadge());
      this.keyWork = null;
    }
    if (encrypted && v.e2ee.mode === 'server_key' && secret) {
      // Each verifyToken of a server-key room is an admission: a new key epoch, drawn for us.
      const sid = v.room.sid;
      this.keyWork = Promise.all([
        SessionKeys.deriveEpoch(secret, sid, v.e2ee.generation ?? 0),
        historySecret ? deriveHistoryKey(historySecret, sid) : Promise.resolve(null),
        contentSecret ? deriveContentKey(contentSecret, sid) : Promise.resolve(null),
      ]).then(([k, h, c]) => {
        this.historyKey = h;
        this.contentKey = c;
        this.setKeys(k);
      });
      this.keyWork.catch(() => toast('This browser could not derive the encryption keys.', 'error'));
    }
    this.renderBadge();
    return true;
  }

  /**
   * The waiting room: shows the waiting page and asks again every few seconds (each ask keeps
   * this guest on the hosts' list) until a host lets them in (the full reply, with the media
   * token), declines them, or they leave.
   */
  private async waitForApproval(first: WaitingReply): Promise<VerifyReply | null> {
    let left = false;
    const page = new WaitingPage({
      title: first.room.title || first.room.room_id,
      name: first.user.name || first.user.user_id,
      message: first.waiting_room_msg,
      onLeave: () => {
        left = true;
      },
    });
    document.title = `Waiting · ${first.room.title || first.room.room_id} · Enclave`;
    this.root.replaceChildren(page.el);
    this.scheduleRenew(first.expires_at);
    for (;;) {
      await new Promise((r) => setTimeout(r, WAITING_ASK_MS));
      if (left) break;
      let r: VerifyReply | WaitingReply;
      try {
        r = await this.api.verifyToken();
      } catch (e) {
        const err = e instanceof ApiError ? e : new ApiError(0, 'network error');
        if (err.httpStatus === 0) {
          page.setNote('Connection lost; still trying…');
          continue;
        }
        if (err.serverMsg === 'notifications.you-are-removed') {
          this.stopRenew();
          this.api.forget();
          messagePage(this.root, { testid: 'error-page', kind: 'error', title: WAITING_REJECTED.title, body: WAITING_REJECTED.body, data: { error: 'waiting-rejected' } });
        } else {
          this.errorPage(err.serverMsg, err.httpStatus);
        }
        return null;
      }
      page.setNote('');
      if (!isWaiting(r)) {
        toast('A host let you in.', 'success');
        return r;
      }
      page.setMessage(r.waiting_room_msg);
    }
    this.stopRenew();
    this.api.forget();
    messagePage(this.root, { testid: 'ended-page', kind: 'info', title: 'You left the waiting room', body: 'Open your join link again to ask to join once more.' });
    return null;
  }

  private setKeys(k: SessionKeys | null): void {
    this.keys?.wipe();
    this.keys = k;
    this.keyStatus.setOwnCheck(k ? k.checkHex : null, k?.generation ?? 0);
    this.code.set(k ? k.verificationCode : null);
  }

  private renderBadge(): void {
    this.badge.set(this.keyStatus.status);
    this.code.set(this.keys?.verificationCode ?? null);
  }

  private scheduleRenew(expiresAt: number): void {
    clearTimeout(this.renewTimer);
    if (!Number.isFinite(expiresAt) || expiresAt <= 0) return;
    const now = Date.now();
    const delay = Math.min(MAX_TIMEOUT, renewDelayMs(now, expiresAt, now));
    this.renewTimer = setTimeout(() => void this.renew(expiresAt), delay);
  }

  private async renew(currentExpiry: number): Promise<void> {
    try {
      const r = await this.api.renewToken();
      if (typeof r.token === 'string' && r.token) this.api.setToken(r.token);
      this.scheduleRenew(typeof r.expires_at === 'number' ? r.expires_at : currentExpiry);
    } catch (e) {
      const stillValid = currentExpiry * 1000 - Date.now() > 15_000;
      if (e instanceof ApiError && e.httpStatus === 401) return; // expired or revoked: nothing to renew
      if (stillValid) this.renewTimer = setTimeout(() => void this.renew(currentExpiry), 30_000);
    }
  }

  private stopRenew(): void {
    clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
  }

  private errorPage(msg: string, status: number, detail?: string): void {
    const t = describeApiError(msg, status);
    this.stopRenew();
    document.title = 'Enclave';
    messagePage(this.root, {
      testid: 'error-page',
      kind: 'error',
      title: t.title,
      body: t.body,
      detail,
      data: { error: msg },
    });
  }

  private unsupported(e2ee: boolean): void {
    this.stopRenew();
    messagePage(this.root, {
      testid: 'unsupported-browser',
      kind: 'error',
      title: 'This browser can’t join this meeting',
      body: e2ee
        ? 'This meeting is end-to-end encrypted, which needs a browser that can encrypt audio and video itself (encoded transforms). Use a current version of Chrome, Edge, Firefox or Safari.'
        : 'This browser does not support real-time video. Use a current version of Chrome, Edge, Firefox or Safari.',
    });
  }

  private topbar(): HTMLElement {
    const v = this.verify!;
    return h(
      'header',
      { class: 'topbar' },
      brand(),
      h('div', { class: 'topbar-title' }, h('span', { class: 'room-title' }, v.room.title || v.room.room_id)),
      h('div', { class: 'topbar-right' }, this.badge.el, this.code.el),
    );
  }

  private cameraPolicy(): { allowed: boolean; note: string | null } {
    const v = this.verify!;
    const f = v.room.features ?? {};
    if (v.user.is_observer && !v.user.is_hidden) {
      return { allowed: false, note: 'You join as an observer. This meeting is end-to-end encrypted, so everyone sees that you are here; you do not send audio or video.' };
    }
    if (v.user.is_hidden) return { allowed: false, note: 'You join as a hidden observer: others do not see you.' };
    if (f.allow_webcams === false) return { allowed: false, note: 'Webcams are turned off in this meeting.' };
    if (f.admin_only_webcams && !v.user.is_admin) return { allowed: false, note: 'Only hosts can use their camera in this meeting.' };
    return { allowed: true, note: null };
  }

  private async showPrejoin(): Promise<void> {
    const v = this.verify!;
    this.prejoin?.destroy();
    const saved = (await this.store?.session(v.room.sid).catch(() => undefined))?.devices;
    const cam = this.cameraPolicy();
    const encrypted = this.keyStatus.encrypted;
    const pj = new Prejoin({
      title: v.room.title || v.room.room_id,
      defaultName: this.lastName ?? v.user.name ?? v.user.user_id,
      isAdmin: v.user.is_admin,
      e2eeEnabled: encrypted,
      mode: encrypted ? v.e2ee.mode : 'off',
      cameraAllowed: cam.allowed,
      cameraNote: cam.note,
      recorderNote: recorderJoinText(flagsFromVerify(v)),
      startMuted: !!v.room.features?.mute_on_start || !!v.user.is_hidden || !!v.user.is_observer,
      micAllowed: !v.user.is_hidden && !v.user.is_observer,
      saved: this.lastJoin ?? saved,
      keyReady: () => !encrypted || !!this.keys,
      submitKey: async (passphrase) => {
        const current = this.verify!;
        const k = await SessionKeys.derive(passphrase, current.room.sid);
        this.setKeys(k);
      },
      clearKey: () => this.setKeys(null),
      code: () => this.keys?.verificationCode ?? null,
      keyWork: this.keyWork,
      autoJoin: this.enter,
      onJoin: (r) => this.join(r),
    });
    this.prejoin = pj;
    this.enter = false;
    document.title = `${v.room.title || v.room.room_id} · Enclave`;
    this.root.replaceChildren(h('div', { class: 'shell' }, this.topbar(), pj.el));
    await pj.start();
  }

  private async join(r: PrejoinResult): Promise<void> {
    const v = this.verify!;
    this.lastJoin = r.devices;
    this.lastName = r.name;
    this.prejoin?.destroy();
    this.prejoin = null;
    const layout: Layout = (await this.store?.session(v.room.sid).catch(() => undefined))?.layout ?? 'grid';
    let workerUrl = '';
    if (this.keyStatus.encrypted) {
      try {
        this.workerUrl ??= await e2eeWorkerUrl(this.api.base, location);
        workerUrl = this.workerUrl;
      } catch (e) {
        this.connectError(r, 'Could not start end-to-end encryption', e, 'The encryption worker did not load.');
        return;
      }
    }
    const m = new Meeting({
      root: this.root,
      verify: v,
      api: this.api,
      keys: this.keyStatus.encrypted ? this.keys : null,
      historyKey: this.keyStatus.encrypted ? this.historyKey : null,
      contentKey: this.keyStatus.encrypted ? this.contentKey : null,
      keyStatus: this.keyStatus,
      workerUrl,
      store: this.store,
      join: r,
      layout,
      onEnded: (reason, intentional) => this.ended(reason, intentional),
      onRekey: () => void this.rekey(),
    });
    try {
      await m.start();
    } catch (e) {
      this.connectError(r, 'Could not connect to the meeting', e, 'The media server could not be reached.');
    }
  }

  /** The meeting could not start: the prepared devices stop, and the page offers to try again. */
  private connectError(r: PrejoinResult, title: string, e: unknown, fallback: string): void {
    r.video?.stop();
    r.audio?.stop();
    messagePage(this.root, {
      testid: 'connect-error-page',
      kind: 'error',
      title,
      body: e instanceof Error && e.message ? e.message : fallback,
      actions: [{ label: 'Try again', testid: 'rejoin-button', primary: true, onClick: () => void this.rejoin() }],
    });
  }

  private ended(reason: DisconnectReason | undefined, intentional: boolean): void {
    const v = this.verify!;
    const t = disconnectText(intentional ? DisconnectReason.CLIENT_INITIATED : reason);
    const actions = [];
    if (t.rejoin) actions.push({ label: 'Rejoin', testid: 'rejoin-button', primary: true, onClick: () => void this.rejoin() });
    if (v.room.is_breakout_room) {
      // A breakout room's token still leads back to the main room once the room has ended.
      const back = this.api.returnFromBreakout();
      back.catch(() => {});
      actions.push({
        label: 'Return to main room',
        testid: 'breakout-return-button',
        primary: !t.rejoin,
        onClick: () =>
          void back.then(
            (token) => location.assign(addressWithToken(location.href, token, true)),
            (e) => toast(e instanceof ApiError && e.serverMsg ? e.serverMsg : 'The main room could not be reached.', 'error'),
          ),
      });
    }
    if (v.room.logout_url && /^https?:\/\//i.test(v.room.logout_url)) {
      actions.push({ label: 'Back', testid: 'logout-link', href: v.room.logout_url });
    }
    if (!t.rejoin) {
      this.stopRenew();
      this.keys?.wipe();
      this.keys = null;
      this.historyKey = null;
      this.contentKey = null;
      this.api.forget();
    }
    document.title = 'Enclave';
    messagePage(this.root, {
      testid: 'ended-page',
      kind: 'info',
      title: t.title,
      body: t.body,
      actions,
      data: { reason: String(reason ?? ''), intentional: String(intentional) },
    });
  }

  /** Back into the meeting: a fresh verifyToken (and media token), then straight in if we can. */
  private async rejoin(): Promise<void> {
    loadingPage(this.root, 'Rejoining…');
    if (!(await this.loadVerify())) return;
    const v = this.verify!;
    if (this.keyStatus.encrypted && !this.keys) {
      if (v.e2ee.mode === 'server_key' && this.keyWork) {
        loadingPage(this.root, 'Deriving this session’s keys…');
        try {
          await this.keyWork;
        } catch {
          await this.showPrejoin();
          return;
        }
      } else {
        await this.showPrejoin();
        return;
      }
    }
    const d = this.lastJoin ?? {};
    const cam = this.cameraPolicy();
    let video: LocalVideoTrack | null = null;
    let audio: LocalAudioTrack | null = null;
    if (d.camera && cam.allowed) {
      video = await createLocalVideoTrack({ deviceId: d.videoinput ? { ideal: d.videoinput } : undefined }).catch(() => null);
    }
    if (d.microphone && !v.user.is_hidden && !v.user.is_observer) {
      audio = await createLocalAudioTrack({ deviceId: d.audioinput ? { ideal: d.audioinput } : undefined }).catch(() => null);
    }
    await this.join({ name: this.lastName ?? v.user.name, video, audio, devices: d });
  }

  /** The wrong-key banner's button: enter another key (self-inserted) or rejoin. */
  private async rekey(): Promise<void> {
    if (this.verify?.e2ee.mode === 'self_insert') {
      this.setKeys(null);
      loadingPage(this.root, 'One moment…');
      if (!(await this.loadVerify())) return;
      await this.showPrejoin();
    } else {
      await this.rejoin();
    }
  }
}

/** livekit-client logs warnings and errors only; its log library's saved levels are removed. */
function quietLogs(): void {
  setLogLevel('warn');
  try {
    for (let i = localStorage.length - 1; i >= 0; i--) {
      const k = localStorage.key(i);
      if (k && k.startsWith('loglevel')) localStorage.removeItem(k);
    }
  } catch {
    // storage may be unavailable (privacy modes): nothing was saved then either
  }
}

function locationParts(): LocationParts {
  return { hostname: location.hostname, pathname: location.pathname, search: location.search };
}

async function main(): Promise<void> {
  quietLogs();
  const root = mountPoint(document);
  if (!root) return;
  const base = serverBase(window as unknown as Parameters<typeof serverBase>[0]);
  // `isSecureContext` is false over plain http:// (except localhost); a browser too old to have
  // it is left to the checks that follow.
  const secure = window.isSecureContext !== false;
  if (!secure) {
    // No camera, microphone or WebCrypto here: say so instead of a pre-join that cannot work.
    // The address (with the join token) is read before anything removes the token from it,
    // and the token stays in the address bar so that a reload shows the same link again.
    const loc = locationParts();
    loadingPage(root, 'One moment…');
    const plan = planStart({ isSecureContext: false, location: loc, tls: await fetchTlsInfo(base) });
    if (plan.page === 'insecure') insecureContextPage(root, plan);
    return;
  }
  const { token, enter } = takeToken();
  if (!token) {
    const t = describeApiError('notifications.auth-header-missing', 401);
    const card = messagePage(root, { testid: 'error-page', kind: 'error', title: t.title, body: t.body, data: { error: 'notifications.auth-header-missing' } });
    const plan = planStart({ isSecureContext: true, location: locationParts(), tls: await fetchTlsInfo(base) });
    if (plan.caDownload && card.isConnected) card.append(caDownloadNote());
    return;
  }
  await new App(root, token, base, enter).start();
}

void main();
