// Small pieces more than one screen uses: a side panel's head (its title, what stands beside it,
// the close button), the pill of an end-to-end encrypted panel, and the Show / Hide switch of a
// secret field.
import { h, icon } from '../dom';

/** A side panel's head; `closeLabel` names its close button for screen readers. */
export function panelHead(title: string, closeLabel: string, onClose: () => void, ...beside: Array<HTMLElement | null>): HTMLElement {
  const close = h('button', { class: 'icon-btn', type: 'button', 'aria-label': closeLabel, title: 'Close' }, icon('close'));
  close.addEventListener('click', onClose);
  return h('header', { class: 'panel-head' }, h('h2', null, title), beside, close);
}

/** Says that what a panel shows is end-to-end encrypted; `title` says how. */
export function encryptedPill(title: string): HTMLElement {
  return h('span', { class: 'pill pill-ok', title }, icon('lock', 'icon icon-xs'), 'Encrypted');
}

/** The button that shows or hides what is typed into the secret field `input`. */
export function revealButton(input: HTMLInputElement, label: string): HTMLButtonElement {
  const show = h('button', { class: 'input-affix', type: 'button', 'aria-label': label, 'aria-pressed': 'false' }, 'Show');
  show.addEventListener('click', () => {
    const visible = input.type === 'text';
    input.type = visible ? 'password' : 'text';
    show.textContent = visible ? 'Show' : 'Hide';
    show.setAttribute('aria-pressed', String(!visible));
  });
  return show;
}
