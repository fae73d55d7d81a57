// Recording and live streaming in the meeting: the REC and LIVE indicators everyone sees in the
// top bar and, for hosts of plain rooms only, the Record and Go live controls and the Go live
// dialog (server address and stream key). The state is the RecorderModel's; this only draws it
// and passes the host's requests on.
import { h, icon, replace, type IconName } from '../dom';
import { checkRtmpTarget, type RecorderModel, type Sink } from '../recorder';
import { revealButton } from './parts';

export interface RecorderActions {
  setRecording(start: boolean): Promise<void>;
  /** Resolves to null once the server accepted, or to the reason it did not. */
  startLive(url: string, streamKey: string): Promise<string | null>;
  stopLive(): Promise<void>;
}

export interface RecorderUiOptions {
  model: RecorderModel;
  /** Whether this person may start and stop cloud recording / RTMP (hosts of plain rooms). */
  canRecord: boolean;
  canStream: boolean;
  actions: RecorderActions;
}

let nextId = 0;
const uid = (p: string) => `${p}-${++nextId}`;

interface Ctl {
  el: HTMLButtonElement;
  iconBox: HTMLElement;
  label: HTMLElement;
}

export class RecorderUi {
  /** For the top bar: the indicators (hidden while off). */
  readonly indicators: HTMLElement;
  /** For the control bar: the host's controls (none for others, and none in E2EE rooms). */
  readonly controls: HTMLButtonElement[] = [];
  private readonly recInd: HTMLElement;
  private readonly liveInd: HTMLElement;
  private readonly rec: Ctl | null = null;
  private readonly live: Ctl | null = null;
  private readonly unsub: () => void;
  private dialog: { close: () => void } | null = null;

  constructor(private readonly o: RecorderUiOptions) {
    this.recInd = h(
      'span',
      { class: 'rec-indicator', 'data-testid': 'recording-indicator', title: 'This meeting is being recorded', hidden: true },
      h('span', { class: 'ind-dot', 'aria-hidden': 'true' }),
      h('span', { class: 'ind-long' }, 'Recording'),
      h('span', { class: 'ind-short', 'aria-hidden': 'true' }, 'REC'),
    );
    this.liveInd = h(
      'span',
      { class: 'live-indicator', 'data-testid': 'live-indicator', title: 'This meeting is being streamed live', hidden: true },
      h('span', { class: 'ind-dot', 'aria-hidden': 'true' }),
      'LIVE',
    );
    this.indicators = h('span', { class: 'recorder-indicators', hidden: true }, this.recInd, this.liveInd);

    if (o.canRecord) {
      this.rec = ctl('record-button', 'ctl-rec');
      this.rec.el.addEventListener('click', () => this.onRecordClick());
      this.controls.push(this.rec.el);
    }
    if (o.canStream) {
      this.live = ctl('rtmp-button', 'ctl-live');
      this.live.el.addEventListener('click', () => this.onLiveClick());
      this.controls.push(this.live.el);
    }
    this.unsub = o.model.onChange(() => this.render());
    this.render();
  }

  destroy(): void {
    this.unsub();
    this.dialog?.close();
  }

  private render(): void {
    const { state } = this.o.model;
    this.recInd.hidden = !state.recording;
    this.liveInd.hidden = !state.rtmp;
    this.indicators.hidden = !state.recording && !state.rtmp;
    if (this.rec) {
      this.draw(this.rec, 'recording', {
        off: ['Record', 'record', 'Record this meeting on the server. Everyone sees that it is being recorded.'],
        on: ['Stop recording', 'recordStop', 'Stop recording this meeting'],
      });
    }
    if (this.live) {
      this.draw(this.live, 'rtmp', {
        off: ['Go live', 'broadcast', 'Stream this meeting live to an RTMP server (YouTube, Twitch, your own…)'],
        on: ['Stop live', 'broadcast', 'Stop the live stream'],
      });
      if (state.rtmp) this.live.el.removeAttribute('aria-haspopup');
      else this.live.el.setAttribute('aria-haspopup', 'dialog');
    }
  }

  private draw(c: Ctl, sink: Sink, t: Record<'on' | 'off', [string, IconName, string]>): void {
    const on = this.o.model.state[sink];
    const pending = this.o.model.pendingOf(sink);
    const [label, iconName, title] = on ? t.on : t.off;
    // While a request is in flight the button stays focusable (aria-disabled, not disabled), so
    // a keyboard user does not lose their place.
    replace(c.iconBox, pending ? h('span', { class: 'spinner spinner-sm' }) : icon(iconName));
    c.label.textContent = pending === 'starting' ? 'Starting…' : pending === 'stopping' ? 'Stopping…' : label;
    c.el.title = pending ? (pending === 'starting' ? 'Starting…' : 'Stopping…') : title;
    c.el.setAttribute('aria-pressed', String(on));
    c.el.classList.toggle('on', on);
    if (pending) {
      c.el.setAttribute('aria-disabled', 'true');
      c.el.setAttribute('aria-busy', 'true');
    } else {
      c.el.removeAttribute('aria-disabled');
      c.el.removeAttribute('aria-busy');
    }
  }

  private onRecordClick(): void {
    if (this.o.model.pendingOf('recording')) return;
    void this.o.actions.setRecording(!this.o.model.state.recording);
  }

  private onLiveClick(): void {
    if (this.o.model.pendingOf('rtmp')) return;
    if (this.o.model.state.rtmp) void this.o.actions.stopLive();
    else this.openDialog();
  }

  /** The Go live dialog: server address and stream key, checked here before they are sent. */
  private openDialog(): void {
    if (this.dialog) return;
    const opener = this.live?.el ?? null;
    const ids = { title: uid('rtmp-title'), desc: uid('rtmp-desc'), url: uid('rtmp-url'), key: uid('rtmp-key'), urlHelp: uid('rtmp-url-help'), keyHelp: uid('rtmp-key-help'), err: uid('rtmp-err') };
    const url = h('input', {
      id: ids.url,
      class: 'input',
      type: 'text',
      inputmode: 'url',
      autocomplete: 'off',
      autocapitalize: 'off',
      spellcheck: 'false',
      placeholder: 'rtmp://live.example.com/app',
      'aria-describedby': `${ids.urlHelp} ${ids.err}`,
      'data-testid': 'rtmp-url-input',
    });
    const key = h('input', {
      id: ids.key,
      class: 'input',
      type: 'password',
      autocomplete: 'off',
      autocapitalize: 'off',
      spellcheck: 'false',
      'aria-describedby': `${ids.keyHelp} ${ids.err}`,
      'data-testid': 'rtmp-key-input',
    });
    const show = revealButton(key, 'Show stream key');
    const error = h('p', { id: ids.err, class: 'field-error', role: 'alert', hidden: true, 'data-testid': 'rtmp-error' });
    const submitLabel = h('span', null, 'Go live');
    const submitIcon = h('span', { class: 'btn-icon' }, icon('broadcast', 'icon icon-sm'));
    const submit = h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'rtmp-submit' }, submitIcon, submitLabel);
    const cancel = h('button', { class: 'btn btn-ghost', type: 'button', 'data-testid': 'rtmp-cancel' }, 'Cancel');
    const form = h(
      'form',
      { novalidate: true },
      h('div', { class: 'field' }, h('label', { for: ids.url }, 'Server address'), url, h('p', { id: ids.urlHelp, class: 'muted small field-help' }, 'From your streaming service: starts with rtmp:// or rtmps://.')),
      h(
        'div',
        { class: 'field' },
        h('label', { for: ids.key }, 'Stream key'),
        h('div', { class: 'input-wrap' }, key, show),
        h('p', { id: ids.keyHelp, class: 'muted small field-help' }, 'Kept secret: it is sent to this meeting’s server only, never stored. Leave it empty if the address already ends with it.'),
      ),
      error,
      h('div', { class: 'modal-actions' }, cancel, submit),
    );
    const dialog = h(
      'div',
      { class: 'modal', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': ids.title, 'aria-describedby': ids.desc, 'data-testid': 'rtmp-dialog' },
      h('h2', { id: ids.title }, 'Go live'),
      h('p', { id: ids.desc }, 'Stream this meeting to YouTube, Twitch or any RTMP server. Everyone in the meeting will see that it is live.'),
      form,
    );
    const backdrop = h('div', { class: 'modal-backdrop' }, dialog);

    let busy = false;
    let closed = false;
    const setError = (text: string | null, field: HTMLInputElement | null = null) => {
      error.textContent = text ?? '';
      error.hidden = !text;
      for (const i of [url, key]) {
        if (i === field) i.setAttribute('aria-invalid', 'true');
        else i.removeAttribute('aria-invalid');
      }
    };
    const setBusy = (b: boolean) => {
      busy = b;
      url.readOnly = b;
      key.readOnly = b;
      replace(submitIcon, b ? h('span', { class: 'spinner spinner-sm' }) : icon('broadcast', 'icon icon-sm'));
      submitLabel.textContent = b ? 'Starting…' : 'Go live';
      if (b) {
        submit.setAttribute('aria-disabled', 'true');
        submit.setAttribute('aria-busy', 'true');
      } else {
        submit.removeAttribute('aria-disabled');
        submit.removeAttribute('aria-busy');
      }
    };
    const close = () => {
      if (closed) return;
      closed = true;
      document.removeEventListener('keydown', onKey, true);
      url.value = '';
      key.value = '';
      backdrop.remove();
      this.dialog = null;
      if (opener && opener.isConnected) opener.focus();
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        close();
      } else if (e.key === 'Tab') {
        // Keep focus inside the dialog.
        const items: HTMLElement[] = [url, key, show, cancel, submit];
        const i = items.indexOf(document.activeElement as HTMLElement);
        if (e.shiftKey && i <= 0) {
          e.preventDefault();
          submit.focus();
        } else if (!e.shiftKey && (i === items.length - 1 || i === -1)) {
          e.preventDefault();
          url.focus();
        }
      }
    };
    for (const i of [url, key]) {
      i.addEventListener('input', () => {
        if (i.getAttribute('aria-invalid') === 'true' || !error.hidden) setError(null);
      });
    }
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (busy) return;
      const c = checkRtmpTarget(url.value, key.value);
      if (!c.ok) {
        const field = c.field === 'url' ? url : key;
        setError(c.error, field);
        field.focus();
        return;
      }
      setError(null);
      setBusy(true);
      void this.o.actions.startLive(c.url, c.streamKey).then((problem) => {
        if (closed) return;
        setBusy(false);
        if (problem) {
          setError(problem);
          url.focus();
        } else {
          close();
        }
      });
    });
    cancel.addEventListener('click', close);
    backdrop.addEventListener('click', (e) => {
      if (e.target === backdrop) close();
    });
    document.addEventListener('keydown', onKey, true);
    document.body.appendChild(backdrop);
    this.dialog = { close };
    url.focus();
  }
}

function ctl(testid: string, cls: string): Ctl {
  const iconBox = h('span', { class: 'ctl-icon' });
  const label = h('span', { class: 'ctl-label' });
  const el = h('button', { class: `ctl ${cls}`, type: 'button', 'data-testid': testid }, iconBox, label);
  return { el, iconBox, label };
}
