// The polls panel: admins ask (question, options, anonymous, live results), everyone answers
// once, results as bars. Every text is set as text; a text that could not be opened in an
// encrypted room says so instead of showing ciphertext.
import { h } from '../dom';
import { MAX_OPTION_CHARS, MAX_POLL_OPTIONS, MAX_QUESTION_CHARS, type PollDraft, type PollView } from '../polls';
import { encryptedPill, panelHead } from './parts';

export interface PollsActions {
  create: (d: PollDraft) => Promise<string | null>;
  vote: (pollId: string, option: number) => Promise<string | null>;
  close: (pollId: string) => Promise<void>;
  exportCsv: (pollId: string) => Promise<void>;
  activate: (active: boolean) => Promise<void>;
}

const UNREADABLE = 'This text could not be decrypted with your key.';

export class PollsPanel {
  readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly form: HTMLFormElement | null = null;
  private readonly question: HTMLInputElement | null = null;
  private readonly optionsBox: HTMLElement | null = null;
  private readonly anonymous: HTMLInputElement | null = null;
  private readonly live: HTMLInputElement | null = null;
  private readonly formError: HTMLElement | null = null;
  private readonly activeBox: HTMLInputElement | null = null;

  constructor(
    private readonly isAdmin: boolean,
    encrypted: boolean,
    private readonly actions: PollsActions,
    onClose: () => void,
  ) {
    this.list = h('ol', { class: 'poll-list', 'aria-label': 'Polls', 'data-testid': 'poll-list' });
    let adminBox: HTMLElement | null = null;
    if (isAdmin) {
      this.question = h('input', { class: 'input', type: 'text', maxlength: MAX_QUESTION_CHARS, placeholder: 'Question', 'aria-label': 'Question', 'data-testid': 'poll-question-input' });
      this.optionsBox = h('div', { class: 'poll-options-input' });
      this.addOption();
      this.addOption();
      const more = h('button', { class: 'chip-btn', type: 'button', 'data-testid': 'poll-add-option' }, '+ Option');
      more.addEventListener('click', () => this.addOption()?.focus());
      this.anonymous = h('input', { type: 'checkbox', 'data-testid': 'poll-anonymous' });
      this.live = h('input', { type: 'checkbox', 'data-testid': 'poll-live-results' });
      this.formError = h('p', { class: 'field-error', role: 'alert', hidden: true, 'data-testid': 'poll-form-error' });
      const submit = h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'poll-submit' }, 'Ask');
      const cancel = h('button', { class: 'btn', type: 'button' }, 'Cancel');
      this.form = h(
        'form',
        { class: 'poll-form', hidden: true, 'aria-label': 'New poll', 'data-testid': 'poll-form' },
        this.question,
        this.optionsBox,
        more,
        h('label', { class: 'lock-toggle' }, this.anonymous, 'Anonymous (nobody sees who chose what)'),
        h('label', { class: 'lock-toggle' }, this.live, 'Show results while it runs'),
        this.formError,
        h('div', { class: 'poll-form-actions' }, cancel, submit),
      );
      cancel.addEventListener('click', () => this.showForm(false));
      this.form.addEventListener('submit', (e) => {
        e.preventDefault();
        void this.submit(submit);
      });
      const create = h('button', { class: 'chip-btn', type: 'button', 'data-testid': 'poll-create-button' }, '+ New poll');
      create.addEventListener('click', () => this.showForm(this.form?.hidden ?? false));
      this.activeBox = h('input', { type: 'checkbox', 'data-testid': 'polls-active' });
      this.activeBox.addEventListener('change', () => {
        const box = this.activeBox;
        if (!box) return;
        box.disabled = true;
        void this.actions.activate(box.checked).finally(() => (box.disabled = false));
      });
      adminBox = h(
        'div',
        { class: 'poll-admin' },
        h('div', { class: 'waiting-head' }, create, h('label', { class: 'lock-toggle', title: 'Show the polls button to everyone' }, this.activeBox, 'Open for everyone')),
        this.form,
      );
    }
    this.el = h(
      'section',
      { class: 'panel polls-panel', 'aria-label': 'Polls', 'data-testid': 'polls-panel' },
      panelHead('Polls', 'Close polls', onClose, encrypted ? encryptedPill('Questions and options are sealed in the browser; the server counts option numbers only') : null),
      adminBox,
      this.list,
    );
    this.render([], false);
  }

  private addOption(): HTMLInputElement | null {
    if (!this.optionsBox || this.optionsBox.children.length >= MAX_POLL_OPTIONS) return null;
    const n = this.optionsBox.children.length + 1;
    const input = h('input', { class: 'input', type: 'text', maxlength: MAX_OPTION_CHARS, placeholder: `Option ${n}`, 'aria-label': `Option ${n}`, 'data-testid': 'poll-option-input' });
    this.optionsBox.appendChild(input);
    return input;
  }

  private showForm(show: boolean): void {
    if (!this.form) return;
    this.form.hidden = !show;
    if (show) this.question?.focus();
  }

  private async submit(btn: HTMLButtonElement): Promise<void> {
    if (!this.question || !this.optionsBox || !this.formError) return;
    const draft: PollDraft = {
      question: this.question.value,
      options: Array.from(this.optionsBox.querySelectorAll('input'), (i) => i.value),
      anonymous: !!this.anonymous?.checked,
      live: !!this.live?.checked,
    };
    btn.disabled = true;
    const err = await this.actions.create(draft);
    btn.disabled = false;
    this.formError.hidden = !err;
    this.formError.textContent = err ?? '';
    if (err) return;
    this.question.value = '';
    this.optionsBox.replaceChildren();
    this.addOption();
    this.addOption();
    if (this.anonymous) this.anonymous.checked = false;
    if (this.live) this.live.checked = false;
    this.showForm(false);
  }

  render(polls: PollView[], active: boolean): void {
    if (this.activeBox) this.activeBox.checked = active;
    if (!polls.length) {
      this.list.replaceChildren(h('li', { class: 'muted poll-empty' }, this.isAdmin ? 'No polls yet. Ask the room a question.' : 'No polls yet.'));
      return;
    }
    // Newest first.
    this.list.replaceChildren(...[...polls].reverse().map((p) => this.renderPoll(p)));
  }

  private renderPoll(p: PollView): HTMLElement {
    const status = p.running ? h('span', { class: 'pill pill-ok' }, 'Open') : h('span', { class: 'pill' }, 'Closed');
    const flags = [p.anonymous ? 'anonymous' : null, p.live ? 'live results' : null].filter(Boolean).join(' · ');
    const head = h(
      'header',
      { class: 'poll-head' },
      h('h3', { class: p.question === null ? 'poll-question unreadable' : 'poll-question', 'data-testid': 'poll-question' }, p.question ?? UNREADABLE),
      status,
    );
    const meta = h('p', { class: 'muted poll-meta' }, h('span', { 'data-testid': 'poll-total' }, `${p.total} ${p.total === 1 ? 'response' : 'responses'}`), flags ? ` · ${flags}` : '');
    const body: HTMLElement[] = [];
    if (p.running && p.mine === null) {
      const error = h('p', { class: 'field-error', role: 'alert', hidden: true });
      const choices = p.options.map((o) => {
        const b = h('button', { class: 'poll-choice', type: 'button', 'data-testid': 'poll-vote-option', 'data-option-id': String(o.id) }, o.text ?? UNREADABLE);
        b.disabled = o.text === null;
        b.addEventListener('click', () => {
          for (const x of choices) x.disabled = true;
          void this.actions.vote(p.id, o.id).then((err) => {
            if (!err) return;
            error.hidden = false;
            error.textContent = err;
            for (const x of choices) x.disabled = false;
          });
        });
        return b;
      });
      body.push(h('div', { class: 'poll-choices', role: 'group', 'aria-label': 'Options' }, choices), error);
    } else if (p.mine !== null) {
      const chosen = p.mine === 'secret' ? null : p.options.find((o) => o.id === p.mine);
      body.push(h('p', { class: 'poll-mine', 'data-testid': 'poll-my-vote' }, chosen ? `You chose: ${chosen.text ?? UNREADABLE}` : 'You answered.'));
    }
    if (p.counts) {
      body.push(
        h(
          'ul',
          { class: 'poll-results', 'data-testid': 'poll-results', 'aria-label': p.running ? 'Results so far' : 'Results' },
          p.options.map((o) => {
            const n = p.counts?.get(o.id) ?? 0;
            const pct = p.total ? Math.round((100 * n) / p.total) : 0;
            return h(
              'li',
              { class: 'poll-result', 'data-option-id': String(o.id), 'data-votes': String(n) },
              h('span', { class: 'poll-result-text' }, o.text ?? UNREADABLE),
              h('span', { class: 'poll-result-count' }, `${n} (${pct}%)`),
              h('span', { class: 'poll-bar', 'aria-hidden': 'true' }, h('span', { class: 'poll-bar-fill', style: `width:${pct}%` })),
            );
          }),
        ),
      );
    } else if (!p.running || p.mine !== null) {
      body.push(h('p', { class: 'muted' }, 'Results are shown when the poll closes.'));
    }
    const actions: HTMLElement[] = [];
    if (this.isAdmin) {
      if (p.running) {
        const close = h('button', { class: 'chip-btn', type: 'button', 'data-testid': 'poll-close-button' }, 'Close poll');
        close.addEventListener('click', () => {
          close.disabled = true;
          void this.actions.close(p.id).finally(() => (close.disabled = false));
        });
        actions.push(close);
      }
      const exp = h('button', { class: 'chip-btn', type: 'button', 'data-testid': 'poll-export' }, 'Export CSV');
      exp.addEventListener('click', () => void this.actions.exportCsv(p.id));
      actions.push(exp);
    }
    return h(
      'li',
      { class: 'poll', 'data-testid': 'poll', 'data-poll-id': p.id, 'data-running': String(p.running) },
      head,
      meta,
      body,
      actions.length ? h('div', { class: 'poll-actions' }, actions) : null,
    );
  }
}
