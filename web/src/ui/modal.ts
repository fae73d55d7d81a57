// A confirmation dialog in the page (window.confirm would block, and is dismissed by automation).
import { h } from '../dom';

export function confirmDialog(opts: {
  title: string;
  body: string;
  confirm: string;
  danger?: boolean;
  /** A checkbox under the text; its state is written to `value.checked` when confirmed. */
  option?: { label: string; testid: string; value: { checked: boolean } };
}): Promise<boolean> {
  return new Promise((resolve) => {
    const previous = document.activeElement as HTMLElement | null;
    const ok = h(
      'button',
      { class: `btn ${opts.danger ? 'btn-danger' : 'btn-primary'}`, type: 'button', 'data-testid': 'confirm-ok' },
      opts.confirm,
    );
    const cancel = h('button', { class: 'btn btn-ghost', type: 'button', 'data-testid': 'confirm-cancel' }, 'Cancel');
    const option = opts.option
      ? (h('input', { type: 'checkbox', 'data-testid': opts.option.testid }) as HTMLInputElement)
      : null;
    const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
    const dialog = h(
      'div',
      { class: 'modal', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': titleId, 'data-testid': 'confirm-dialog' },
      h('h2', { id: titleId }, opts.title),
      h('p', null, opts.body),
      ...(option ? [h('label', { class: 'modal-option' }, option, ` ${opts.option!.label}`)] : []),
      h('div', { class: 'modal-actions' }, cancel, ok),
    );
    const backdrop = h('div', { class: 'modal-backdrop' }, dialog);
    const finish = (v: boolean) => {
      document.removeEventListener('keydown', onKey, true);
      backdrop.remove();
      previous?.focus?.();
      resolve(v);
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        finish(false);
      } else if (e.key === 'Tab') {
        // Keep focus inside the dialog.
        const first = cancel;
        const last = ok;
        if (e.shiftKey && document.activeElement === first) {
          e.preventDefault();
          last.focus();
        } else if (!e.shiftKey && document.activeElement === last) {
          e.preventDefault();
          first.focus();
        }
      }
    };
    ok.addEventListener('click', () => {
      if (option && opts.option) opts.option.value.checked = option.checked;
      finish(true);
    });
    cancel.addEventListener('click', () => finish(false));
    backdrop.addEventListener('click', (e) => {
      if (e.target === backdrop) finish(false);
    });
    document.addEventListener('keydown', onKey, true);
    document.body.appendChild(backdrop);
    cancel.focus();
  });
}
