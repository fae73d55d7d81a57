// Breakout rooms in the meeting: a hosts' panel (plan: how many rooms, how long, who goes
// where, by hand or at random; then each room's people, join, end, end all, a message to all),
// an invitation banner for those assigned, and in a breakout room a banner with its time left
// and the way back. Each breakout room is a session of its own: moving is a new page load with
// that room's join token (a new sid, and in an encrypted room new keys).
import type { BreakoutPlan, BreakoutRoom } from '../api';
import { h, icon } from '../dom';
import { panelHead } from './parts';

export interface Person {
  identity: string;
  name: string;
  isAdmin: boolean;
}

export interface BreakoutActions {
  start: (plan: BreakoutPlan) => Promise<string | null>;
  join: (roomId: string) => void;
  extend: (roomId: string, minutes: number) => void;
  end: (roomId: string) => void;
  endAll: () => void;
  message: (text: string) => Promise<boolean>;
}

/** `n` rooms "Room 1" … with ids 1 … and people dealt at random (hosts stay in the main room). */
export function randomAssignment(people: Person[], n: number, random: () => number = Math.random): Map<string, number> {
  const guests = people.filter((p) => !p.isAdmin).map((p) => p.identity);
  for (let i = guests.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [guests[i], guests[j]] = [guests[j], guests[i]];
  }
  return new Map(guests.map((id, i) => [id, (i % n) + 1]));
}

/** The create request for a plan: rooms 1..n, each with the people assigned to it. */
export function planFor(people: Person[], assigned: Map<string, number>, n: number, minutes: number): BreakoutPlan {
  const rooms = [];
  for (let i = 1; i <= n; i++) {
    const users = people.filter((p) => assigned.get(p.identity) === i).map((p) => ({ id: p.identity, name: p.name }));
    rooms.push({ id: String(i), title: `Room ${i}`, users });
  }
  return { duration: minutes, rooms };
}

/** "mm:ss" (or "h:mm:ss") until `endsAt` (Unix seconds). */
export function timeLeft(endsAt: number, nowMs: number): string {
  const s = Math.max(0, Math.round(endsAt - nowMs / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh > 0 ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

export class BreakoutPanel {
  readonly el: HTMLElement;
  private readonly body: HTMLElement;
  private people: Person[] = [];
  private rooms: BreakoutRoom[] = [];
  private planning = false;
  private count = 2;
  private minutes = 15;
  private readonly assigned = new Map<string, number>();

  constructor(
    private readonly encrypted: boolean,
    private readonly maxRooms: number,
    private readonly actions: BreakoutActions,
    onClose: () => void,
  ) {
    this.body = h('div', { class: 'breakout-body' });
    this.el = h(
      'section',
      { class: 'panel breakout-panel', 'aria-label': 'Breakout rooms', 'data-testid': 'breakout-panel' },
      panelHead('Breakout rooms', 'Close breakout rooms', onClose),
      this.body,
    );
    this.render();
  }

  setPeople(people: Person[]): void {
    this.people = people;
    if (this.planning) this.render();
  }

  setRooms(rooms: BreakoutRoom[]): void {
    this.rooms = rooms;
    if (rooms.length) this.planning = false;
    this.render();
  }

  /** Refreshes the times left. */
  tick(): void {
    for (const el of this.body.querySelectorAll<HTMLElement>('[data-ends-at]')) {
      el.textContent = timeLeft(Number(el.dataset.endsAt), Date.now());
    }
  }

  private render(): void {
    if (this.rooms.length) this.body.replaceChildren(...this.renderRooms());
    else if (this.planning) this.body.replaceChildren(...this.renderPlan());
    else {
      const create = h('button', { class: 'btn btn-primary', type: 'button', 'data-testid': 'breakout-create-button' }, 'Plan breakout rooms');
      create.addEventListener('click', () => {
        this.planning = true;
        this.render();
      });
      this.body.replaceChildren(h('p', { class: 'muted' }, 'Split the meeting into smaller rooms for a while. Each is a meeting of its own', this.encrypted ? ', with keys of its own.' : '.'), create);
    }
  }

  private renderPlan(): HTMLElement[] {
    const count = h('input', { class: 'input', type: 'number', min: 1, max: this.maxRooms, value: this.count, 'aria-label': 'Number of rooms', 'data-testid': 'breakout-room-count' }) as HTMLInputElement;
    count.addEventListener('change', () => {
      this.count = Math.min(this.maxRooms, Math.max(1, Math.floor(Number(count.value) || 1)));
      for (const [id, n] of this.assigned) if (n > this.count) this.assigned.delete(id);
      this.render();
    });
    const minutes = h('input', { class: 'input', type: 'number', min: 1, max: 1440, value: this.minutes, 'aria-label': 'Minutes', 'data-testid': 'breakout-duration' }) as HTMLInputElement;
    minutes.addEventListener('change', () => {
      this.minutes = Math.min(1440, Math.max(1, Math.floor(Number(minutes.value) || 1)));
    });
    const random = h('button', { class: 'chip-btn', type: 'button', 'data-testid': 'breakout-assign-random' }, 'Assign at random');
    random.addEventListener('click', () => {
      this.assigned.clear();
      for (const [id, n] of randomAssignment(this.people, this.count)) this.assigned.set(id, n);
      this.render();
    });
    const rows = this.people.map((p) => {
      const select = h('select', { class: 'input', 'aria-label': `Room for ${p.name}`, 'data-testid': 'breakout-assign', 'data-identity': p.identity }) as HTMLSelectElement;
      select.append(h('option', { value: '0' }, 'Main room'));
      for (let i = 1; i <= this.count; i++) select.append(h('option', { value: String(i) }, `Room ${i}`));
      select.value = String(this.assigned.get(p.identity) ?? 0);
      select.addEventListener('change', () => {
        const n = Number(select.value);
        if (n > 0) this.assigned.set(p.identity, n);
        else this.assigned.delete(p.identity);
      });
      return h('li', { class: 'breakout-person' }, h('span', null, p.name, p.isAdmin ? ' (host)' : ''), select);
    });
    const error = h('p', { class: 'field-error', role: 'alert', hidden: true, 'data-testid': 'breakout-error' });
    const start = h('button', { class: 'btn btn-primary', type: 'button', 'data-testid': 'breakout-start' }, 'Open the rooms');
    start.addEventListener('click', () => {
      start.disabled = true;
      void this.actions.start(planFor(this.people, this.assigned, this.count, this.minutes)).then((err) => {
        start.disabled = false;
        error.hidden = !err;
        error.textContent = err ?? '';
      });
    });
    const cancel = h('button', { class: 'btn', type: 'button' }, 'Cancel');
    cancel.addEventListener('click', () => {
      this.planning = false;
      this.render();
    });
    return [
      h('div', { class: 'breakout-settings' }, h('label', null, 'Rooms', count), h('label', null, 'Minutes', minutes), random),
      h('ul', { class: 'breakout-people', 'aria-label': 'Who goes where' }, rows),
      error,
      h('div', { class: 'poll-form-actions' }, cancel, start),
    ];
  }

  private renderRooms(): HTMLElement[] {
    const rooms = this.rooms.map((r) => {
      const join = h('button', { class: 'chip-btn', type: 'button', 'data-testid': 'breakout-join-button' }, 'Join');
      join.addEventListener('click', () => this.actions.join(r.id));
      const extend = h('button', { class: 'chip-btn', type: 'button', 'data-testid': 'breakout-extend-button', title: 'Five more minutes' }, '+5 min');
      extend.addEventListener('click', () => this.actions.extend(r.id, 5));
      const end = h('button', { class: 'chip-btn chip-danger', type: 'button', 'data-testid': 'breakout-end-button' }, 'End');
      end.addEventListener('click', () => this.actions.end(r.id));
      return h(
        'li',
        { class: 'poll', 'data-testid': 'breakout-room', 'data-room-id': r.id },
        h('header', { class: 'poll-head' }, h('h3', { class: 'poll-question' }, r.title), h('span', { class: 'pill', 'data-ends-at': String(r.ends_at), title: 'Time left' }, timeLeft(r.ends_at, Date.now()))),
        h(
          'p',
          { class: 'muted poll-meta' },
          r.users.length ? r.users.map((u) => `${u.name}${u.joined ? ' ●' : ''}`).join(', ') : 'Nobody assigned',
        ),
        h('div', { class: 'poll-actions' }, join, extend, end),
      );
    });
    const endAll = h('button', { class: 'btn btn-danger', type: 'button', 'data-testid': 'breakout-end-all' }, 'End all breakout rooms');
    endAll.addEventListener('click', () => this.actions.endAll());
    const out: HTMLElement[] = [h('ol', { class: 'poll-list', 'aria-label': 'Breakout rooms' }, rooms)];
    if (this.encrypted) {
      out.push(h('p', { class: 'muted small' }, 'Messages to every room are off in an encrypted meeting: they would pass through the server in clear.'));
    } else {
      const input = h('input', { class: 'input', type: 'text', maxlength: 2000, placeholder: 'Message to every room', 'aria-label': 'Message to every breakout room', 'data-testid': 'breakout-message-input' }) as HTMLInputElement;
      const sendBtn = h('button', { class: 'chip-btn', type: 'submit', 'data-testid': 'breakout-message-send' }, 'Send');
      const form = h('form', { class: 'chat-form' }, input, sendBtn);
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        const text = input.value.trim();
        if (!text) return;
        void this.actions.message(text).then((ok) => {
          if (ok) input.value = '';
        });
      });
      out.push(form);
    }
    out.push(endAll);
    return out;
  }
}

/** The banner of an invitation to a breakout room, or of the breakout room we are in. */
export class BreakoutBanner {
  readonly el: HTMLElement;
  private readonly text: HTMLElement;
  private readonly button: HTMLButtonElement;
  private endsAt_ = 0;
  private label = '';

  constructor(onClick: () => void) {
    this.text = h('p', { 'data-testid': 'breakout-banner-text' });
    this.button = h('button', { class: 'btn btn-light btn-sm', type: 'button' }) as HTMLButtonElement;
    this.button.addEventListener('click', onClick);
    this.el = h('div', { class: 'banner banner-info', role: 'status', hidden: true, 'data-testid': 'breakout-banner' }, icon('people'), this.text, this.button);
  }

  /** Invited to `title`: the join button. */
  invite(title: string, endsAt: number): void {
    this.show(`A host has opened breakout room “${title}” for you.`, endsAt, 'Join breakout room', 'breakout-join-button');
  }

  /** In breakout room `title`: the return button. */
  inside(title: string, endsAt: number): void {
    this.show(`Breakout room “${title}”.`, endsAt, 'Return to main room', 'breakout-return-button');
  }

  /** The time is up at `endsAt` now (a host gave more). */
  endsAt(endsAt: number): void {
    this.endsAt_ = endsAt;
    this.tick();
  }

  hide(): void {
    this.el.hidden = true;
  }

  tick(): void {
    if (this.el.hidden) return;
    this.text.textContent = this.endsAt_ ? `${this.label} Time left: ${timeLeft(this.endsAt_, Date.now())}` : this.label;
  }

  private show(label: string, endsAt: number, button: string, testid: string): void {
    this.label = label;
    this.endsAt_ = endsAt;
    this.button.textContent = button;
    this.button.dataset.testid = testid;
    this.button.disabled = false;
    this.el.hidden = false;
    this.tick();
  }

  busy(): void {
    this.button.disabled = true;
  }

  ready(): void {
    this.button.disabled = false;
  }
}
