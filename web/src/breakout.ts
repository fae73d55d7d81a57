// Breakout rooms, for the meeting: what a host opened (the panel), where we are invited (the
// banner), and the moves. A move is a new page load with the other room's join token (the
// server issues it: `join` for a breakout room, `return` for the way back, which still answers
// once the breakout room has ended), after leaving this meeting.

import type { Api, BreakoutPlan, VerifyReply } from './api';
import { ApiError } from './api';
import type { SystemMessage } from './protocol';
import { BreakoutBanner, BreakoutPanel, type Person } from './ui/breakout';
import { toast } from './ui/toasts';

export interface BreakoutsOptions {
  api: Api;
  verify: VerifyReply;
  isAdmin: boolean;
  /** An end-to-end encrypted room (no messages to every room through the server). */
  encrypted: boolean;
  /** Everyone in the meeting now. */
  people: () => Person[];
  /** Leaves this meeting quietly before a move. */
  leave: () => Promise<void>;
  /** Closes the panel. */
  closePanel: () => void;
}

/** The address fragment that makes the next page join by itself (see `Prejoin.autoJoin`). */
export const ENTER_FRAGMENT = 'enter';

/**
 * This page's address with another join token (the embedding page's other parameters kept);
 * `enter`: the page goes straight into the meeting (a move the person chose already).
 */
export function addressWithToken(href: string, token: string, enter = false): string {
  const u = new URL(href);
  u.searchParams.set('access_token', token);
  u.hash = enter ? ENTER_FRAGMENT : '';
  return u.toString();
}

function message(e: unknown): string {
  return e instanceof ApiError && e.serverMsg ? e.serverMsg : 'The server did not answer.';
}

export class Breakouts {
  readonly banner: BreakoutBanner;
  readonly panel: BreakoutPanel | null;
  private invitedTo: string | null = null;
  private timer: ReturnType<typeof setInterval> | undefined;
  private moving = false;

  constructor(private readonly o: BreakoutsOptions) {
    const room = o.verify.room;
    this.banner = new BreakoutBanner(() => void (room.is_breakout_room ? this.returnToMain() : this.joinInvited()));
    const f = room.features as { breakout_room_features?: { is_allow?: boolean; allowed_number_rooms?: number } } | undefined;
    const allowed = !room.is_breakout_room && f?.breakout_room_features?.is_allow !== false;
    this.panel =
      o.isAdmin && allowed
        ? new BreakoutPanel(
            o.encrypted,
            f?.breakout_room_features?.allowed_number_rooms || 6,
            {
              start: (plan) => this.open(plan),
              join: (id) => void this.move(() => this.o.api.joinBreakoutRoom(id)),
              extend: (id, minutes) =>
                void this.o.api.extendBreakoutRoom(id, minutes).then(
                  () => this.refresh(),
                  (e) => toast(message(e), 'error'),
                ),
              end: (id) => void this.o.api.endBreakoutRoom(id).catch((e) => toast(message(e), 'error')),
              endAll: () => void this.o.api.endAllBreakoutRooms().catch((e) => toast(message(e), 'error')),
              message: (text) =>
                this.o.api.breakoutMessage(text).then(
                  () => true,
                  (e) => {
                    toast(message(e), 'error');
                    return false;
                  },
                ),
            },
            o.closePanel,
          )
        : null;
  }

  get inBreakoutRoom(): boolean {
    return !!this.o.verify.room.is_breakout_room;
  }

  /** After joining: the banner of where we are or are invited, the hosts' list, the clock. */
  start(): void {
    const room = this.o.verify.room;
    if (room.is_breakout_room) this.banner.inside(room.title, room.ends_at ?? 0);
    else void this.o.api.myBreakoutRoom().then((r) => r && this.invited(r.id, r.title, r.ends_at), () => {});
    void this.refresh();
    this.timer = setInterval(() => {
      this.banner.tick();
      this.panel?.tick();
    }, 1000);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** People changed (for the plan). */
  setPeople(): void {
    this.panel?.setPeople(this.o.people());
  }

  async onMessage(m: SystemMessage): Promise<void> {
    if (m.type === 'JOIN_BREAKOUT_ROOM') {
      this.invited(m.breakout_room_id, m.title, m.ends_at);
      toast(`You are invited to breakout room “${m.title}”.`, 'info');
    } else if (m.type === 'BREAKOUT_ROOM_ENDED') {
      if (this.invitedTo === m.breakout_room_id) {
        this.invitedTo = null;
        this.banner.hide();
      }
      await this.refresh();
    } else if (m.type === 'BREAKOUT_ROOMS_CHANGED') {
      await this.refresh();
    } else if (m.type === 'BREAKOUT_ROOM_EXTENDED' && this.inBreakoutRoom) {
      this.banner.endsAt(m.ends_at);
      toast('A host gave this room more time.', 'info');
    }
  }

  private invited(id: string, title: string, endsAt: number): void {
    this.invitedTo = id;
    this.banner.invite(title, endsAt);
  }

  private async refresh(): Promise<void> {
    if (!this.panel) return;
    try {
      this.panel.setRooms(await this.o.api.listBreakoutRooms());
    } catch {
      // the next change refreshes again
    }
  }

  private async open(plan: BreakoutPlan): Promise<string | null> {
    if (!plan.rooms.some((r) => r.users.length)) return 'Assign at least one person to a room.';
    try {
      await this.o.api.createBreakoutRooms(plan);
    } catch (e) {
      return message(e);
    }
    await this.refresh();
    return null;
  }

  private joinInvited(): void {
    const id = this.invitedTo;
    if (id) void this.move(() => this.o.api.joinBreakoutRoom(id));
  }

  /** Back to the main room (also from the page shown once a breakout room has ended). */
  returnToMain(): Promise<void> {
    return this.move(() => this.o.api.returnFromBreakout());
  }

  private async move(token: () => Promise<string>): Promise<void> {
    if (this.moving) return;
    this.moving = true;
    this.banner.busy();
    let t: string;
    try {
      t = await token();
    } catch (e) {
      this.moving = false;
      this.banner.ready();
      toast(message(e), 'error');
      return;
    }
    await this.o.leave();
    location.assign(addressWithToken(location.href, t, true));
  }
}
