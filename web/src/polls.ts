// Polls: what the meeting knows of them and how their texts are sealed. The server counts option
// ids; in an encrypted room it never sees a question or an option text (content.ts). This module
// holds the state and talks to the server; ui/polls.ts draws it.

import type { Api, NewPoll, PollInfo } from './api';
import type { ContentSealer } from './content';

export const MAX_POLL_OPTIONS = 20;
export const MAX_QUESTION_CHARS = 500;
export const MAX_OPTION_CHARS = 200;

export interface PollDraft {
  question: string;
  options: string[];
  anonymous: boolean;
  live: boolean;
}

/** A poll with its texts opened (`null`: a text this browser could not open). */
export interface OpenPoll {
  id: string;
  question: string | null;
  options: Array<{ id: number; text: string | null }>;
  running: boolean;
  anonymous: boolean;
  live: boolean;
  createdBy: string;
  sealed: boolean;
}

/** What the panel shows of one poll. */
export interface PollView extends OpenPoll {
  total: number;
  /** Our vote: an option id, 'secret' (an anonymous poll we answered), or null. */
  mine: number | 'secret' | null;
  /** Counts per option id, when we may see them. */
  counts: Map<number, number> | null;
}

/** What a sealed poll text is bound to: the poll, its creator and which text it is. */
export function pollAad(pollId: string, creator: string, field: 'q' | number): string[] {
  return ['poll', pollId, creator, field === 'q' ? 'q' : `o${field}`];
}

/** Why a draft cannot be asked, or null. */
export function validateDraft(d: PollDraft): string | null {
  const q = d.question.trim();
  if (!q) return 'Write a question.';
  if (q.length > MAX_QUESTION_CHARS) return `The question is longer than ${MAX_QUESTION_CHARS} characters.`;
  const opts = d.options.map((o) => o.trim()).filter(Boolean);
  if (opts.length < 2) return 'Give at least two options.';
  if (opts.length > MAX_POLL_OPTIONS) return `A poll has at most ${MAX_POLL_OPTIONS} options.`;
  if (opts.some((o) => o.length > MAX_OPTION_CHARS)) return `An option is longer than ${MAX_OPTION_CHARS} characters.`;
  return null;
}

/** A fresh poll id (the client chooses it: sealed texts are bound to it). */
export function newPollId(): string {
  const b = new Uint8Array(12);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** The request for a draft, its texts sealed by `sealer` (as they are in a plain room). */
export async function sealPoll(sealer: ContentSealer, d: PollDraft, creator: string, pollId = newPollId()): Promise<NewPoll> {
  const texts = d.options.map((o) => o.trim()).filter(Boolean);
  const options = await Promise.all(texts.map(async (t, i) => ({ id: i + 1, text: await sealer.seal(pollAad(pollId, creator, i + 1), t) })));
  return {
    poll_id: pollId,
    question: await sealer.seal(pollAad(pollId, creator, 'q'), d.question.trim()),
    options,
    is_anonymous: d.anonymous,
    live_results: d.live,
  };
}

/** Opens a poll's texts; a text that does not open is null (never shown as ciphertext). */
export async function openPoll(sealer: ContentSealer, p: PollInfo): Promise<OpenPoll> {
  const open = async (field: 'q' | number, text: string): Promise<string | null> => {
    try {
      return await sealer.open(pollAad(p.id, p.created_by, field), text);
    } catch {
      return null;
    }
  };
  return {
    id: p.id,
    question: await open('q', p.question),
    options: await Promise.all(p.options.map(async (o) => ({ id: o.id, text: await open(o.id, o.text) }))),
    running: p.is_running,
    anonymous: p.is_anonymous,
    live: p.live_results,
    createdBy: p.created_by,
    sealed: p.is_sealed,
  };
}

function csvCell(s: string): string {
  // Quote every cell; a leading formula character is defused for spreadsheets.
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return `"${safe.replace(/"/g, '""')}"`;
}

/** The results as CSV (option, votes, share), plus who chose what when we know it. */
export function resultsCsv(p: PollView, respondents: Array<{ name: string; option: number }> = []): string {
  const rows = [['Question', p.question ?? '(could not be opened)'], ['Option', 'Votes', 'Share']];
  for (const o of p.options) {
    const n = p.counts?.get(o.id) ?? 0;
    rows.push([o.text ?? '(could not be opened)', String(n), p.total ? `${Math.round((100 * n) / p.total)}%` : '0%']);
  }
  rows.push(['Total', String(p.total), '']);
  if (respondents.length) {
    rows.push([], ['Participant', 'Choice']);
    for (const r of respondents) rows.push([r.name, p.options.find((o) => o.id === r.option)?.text ?? String(r.option)]);
  }
  return rows.map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

/** Plug-N-Meet's `user_id:option_id:name` respondent entries. */
export function parseRespondents(all: string[]): Array<{ userId: string; option: number; name: string }> {
  const out = [];
  for (const e of all) {
    const [userId, option, ...name] = e.split(':');
    const n = Number(option);
    if (userId && Number.isInteger(n)) out.push({ userId, option: n, name: name.join(':') });
  }
  return out;
}

export interface PollsOptions {
  api: Api;
  sealer: ContentSealer;
  identity: string;
  isAdmin: boolean;
  /** The state changed (after a refresh or a vote). */
  onChange: (polls: PollView[], active: boolean) => void;
}

/**
 * The meeting's polls: fetched when the meeting starts and whenever the server says they
 * changed, opened once per poll, our own vote remembered.
 */
export class Polls {
  private views: PollView[] = [];
  private active = false;
  private readonly opened = new Map<string, OpenPoll>();
  private readonly mine = new Map<string, number | 'secret'>();
  private refreshing: Promise<void> | null = null;
  private again = false;

  constructor(private readonly o: PollsOptions) {}

  get list(): PollView[] {
    return this.views;
  }

  get isActive(): boolean {
    return this.active;
  }

  /** Running polls this participant has not answered. */
  get unanswered(): number {
    return this.views.filter((p) => p.running && p.mine === null).length;
  }

  find(id: string): PollView | undefined {
    return this.views.find((p) => p.id === id);
  }

  /** Fetches everything again (coalesced: one request in flight, one more queued). */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = this.load()
      .catch(() => {})
      .finally(() => {
        this.refreshing = null;
        if (this.again) {
          this.again = false;
          void this.refresh();
        }
      });
    return this.refreshing;
  }

  setActive(active: boolean): void {
    this.active = active;
    this.o.onChange(this.views, this.active);
  }

  private async load(): Promise<void> {
    const { polls, is_active } = await this.o.api.listPolls();
    const views: PollView[] = [];
    for (const p of polls) {
      let open = this.opened.get(p.id);
      if (!open) {
        open = await openPoll(this.o.sealer, p);
        this.opened.set(p.id, open);
      }
      open = { ...open, running: p.is_running };
      this.opened.set(p.id, open);
      if (!this.mine.has(p.id)) {
        const s = await this.o.api.pollSelection(p.id, this.o.identity).catch(() => null);
        if (s?.has_voted) this.mine.set(p.id, s.voted > 0 ? s.voted : 'secret');
      }
      let counts: Map<number, number> | null = null;
      let total = 0;
      if (!p.is_running || p.live_results || this.o.isAdmin) {
        const r = await this.o.api.pollResult(p.id).catch(() => null);
        if (r) {
          counts = new Map(r.options.map((x) => [x.id, x.vote_count]));
          total = r.total_responses;
        }
      }
      views.push({ ...open, total, mine: this.mine.get(p.id) ?? null, counts });
    }
    this.views = views;
    this.active = is_active;
    this.o.onChange(this.views, this.active);
  }

  /** Admins: asks a poll. Returns the reason it was refused, or null. */
  async create(d: PollDraft): Promise<string | null> {
    const invalid = validateDraft(d);
    if (invalid) return invalid;
    try {
      await this.o.api.createPoll(await sealPoll(this.o.sealer, d, this.o.identity));
    } catch (e) {
      return e instanceof Error && 'serverMsg' in e ? String((e as { serverMsg: string }).serverMsg) || 'The server refused the poll.' : 'The poll could not be sealed.';
    }
    await this.refresh();
    return null;
  }

  /** Votes once. Returns the reason it failed, or null. */
  async vote(pollId: string, option: number): Promise<string | null> {
    try {
      await this.o.api.submitPollResponse(pollId, option);
    } catch (e) {
      return e instanceof Error && 'serverMsg' in e ? String((e as { serverMsg: string }).serverMsg) || 'The vote was not counted.' : 'The vote was not counted.';
    }
    this.mine.set(pollId, option);
    await this.refresh();
    return null;
  }

  async close(pollId: string): Promise<void> {
    await this.o.api.closePoll(pollId);
    await this.refresh();
  }

  /** The CSV of a poll's results (admins get who chose what, unless it is anonymous). */
  async exportCsv(pollId: string): Promise<string | null> {
    const p = this.find(pollId);
    if (!p) return null;
    let respondents: Array<{ name: string; option: number }> = [];
    if (this.o.isAdmin && !p.anonymous) {
      respondents = parseRespondents(await this.o.api.pollRespondents(pollId).catch(() => []));
    }
    return resultsCsv(p, respondents);
  }
}
