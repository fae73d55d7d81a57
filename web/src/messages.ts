// Every sentence the server may send as a key, and the client's own user-facing sentences that
// more than one screen uses. English only for now; one place to translate later.

import { ApiError } from './api';

export interface ErrorText {
  title: string;
  body: string;
}

const API_ERRORS: Record<string, ErrorText> = {
  'notifications.invalid-token': {
    title: 'This join link is not valid',
    body: 'The link you opened is incomplete or was not issued for this server. Ask the organiser for a new one.',
  },
  'notifications.token-expired': {
    title: 'This join link has expired',
    body: 'Join links are valid for a limited time. Ask the organiser for a new one.',
  },
  'notifications.auth-header-missing': {
    title: 'No join link',
    body: 'Open this page with the join link you were given: it carries your invitation.',
  },
  'notifications.room-not-active': {
    title: 'This meeting is not running',
    body: 'It has not started yet or has already ended. Try again later, or ask the organiser.',
  },
  'notifications.user-info-not-found': {
    title: 'This join link is for another session',
    body: 'The meeting was restarted since this link was made. Ask the organiser for a new one.',
  },
  'notifications.you-are-removed': {
    title: 'You were removed from this meeting',
    body: 'A host removed you, and this join link no longer lets you in. Ask the organiser for a new one if this was a mistake.',
  },
  'notifications.you-are-blocked': {
    title: 'You cannot rejoin this meeting',
    body: 'A host removed you and blocked you from joining this session again.',
  },
  'only admin can perform this task': {
    title: 'Only a host can do that',
    body: 'This action is reserved for the hosts of the meeting.',
  },
};

/** An English sentence pair for a server error key (or the server's text if it is already prose). */
export function describeApiError(msg: string | undefined, httpStatus?: number): ErrorText {
  if (msg && API_ERRORS[msg]) return API_ERRORS[msg];
  if (httpStatus === 0) {
    return {
      title: 'The server cannot be reached',
      body: 'Check your connection and reload the page.',
    };
  }
  if (msg && !/^notifications\./.test(msg) && msg.length < 300) {
    return { title: 'Something went wrong', body: capitalise(msg) };
  }
  if (httpStatus === 404 || httpStatus === 405 || httpStatus === 501 || (httpStatus !== undefined && httpStatus >= 502)) {
    return {
      title: 'The meeting service is not available',
      body: `This address does not answer the meeting API (HTTP ${httpStatus}). Try again in a moment, or ask the organiser.`,
    };
  }
  if (httpStatus === 401) return API_ERRORS['notifications.invalid-token']!;
  return {
    title: 'Something went wrong',
    body: 'The server could not complete the request. Reload the page to try again.',
  };
}

/** The waiting page's answer when a host turned the guest away (a removal while waiting). */
export const WAITING_REJECTED: ErrorText = {
  title: 'The host did not let you in',
  body: 'A host declined your request to join this meeting. Ask the organiser if this was a mistake.',
};

/** A short sentence for a toast. */
export function shortApiError(msg: string | undefined, httpStatus?: number): string {
  const t = describeApiError(msg, httpStatus);
  return t.title === 'Something went wrong' ? t.body : t.title;
}

/** A short sentence for a toast after a failed request: the server's reason, or `fallback`. */
export function apiErrorText(e: unknown, fallback = 'That did not work.'): string {
  return e instanceof ApiError ? shortApiError(e.serverMsg, e.httpStatus) : fallback;
}

/**
 * Why an admin action (recording, RTMP) failed, in one sentence: the server's own `msg` whenever
 * it gave one, so the admin reads exactly what the server refused.
 */
export function taskErrorText(msg: string, httpStatus: number): string {
  if (msg && API_ERRORS[msg]) return `${API_ERRORS[msg].title}.`;
  if (httpStatus === 0) return 'The server cannot be reached. Check your connection.';
  if (msg && !/^notifications\./.test(msg)) return capitalise(msg.slice(0, 300));
  if (httpStatus === 404 || httpStatus === 405 || httpStatus === 501) return `This server does not offer it (HTTP ${httpStatus}).`;
  return `The server could not do it (HTTP ${httpStatus}).`;
}

/** What everyone is told when the room's recorder state changes. */
export function recorderText(sink: 'recording' | 'rtmp', on: boolean): string {
  if (sink === 'recording') return on ? 'Recording started: this meeting is being recorded.' : 'Recording stopped.';
  return on ? 'This meeting is now live: it is being streamed.' : 'The live stream has ended.';
}

/** What someone joining is told about recording and streaming, or null when neither runs. */
export function recorderJoinText(f: { recording: boolean; rtmp: boolean }): string | null {
  if (f.recording && f.rtmp) return 'This meeting is being recorded and streamed live.';
  if (f.recording) return 'This meeting is being recorded.';
  if (f.rtmp) return 'This meeting is being streamed live.';
  return null;
}

function capitalise(s: string): string {
  const t = s.trim();
  const first = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

export const WRONG_KEY_BANNER =
  "Your encryption key doesn't match the one others are using — you can't see or hear them, and they can't see or hear you. Check the key and rejoin.";

/** Said to those who share a key with someone while others use a different one. */
export function keyShareBanner(sharing: number, total: number, differ: string[]): string {
  const who = listNames(differ);
  const verb = differ.length === 1 ? 'uses' : 'use';
  return `${sharing} of ${total} share your encryption key. ${who} ${verb} a different key — you can't see or hear each other until they rejoin with the right one.`;
}

export function listNames(names: string[]): string {
  if (names.length === 0) return 'Someone';
  if (names.length === 1) return names[0]!;
  if (names.length === 2) return `${names[0]} and ${names[1]}`;
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

export type E2eeMode = 'server_key' | 'self_insert' | 'off';

/** The one-line explanation of a room's encryption on the pre-join screen. */
export function e2eeModeLine(mode: E2eeMode, enabled: boolean): string {
  if (!enabled || mode === 'off') {
    return 'This meeting is not end-to-end encrypted: the server can see and hear it.';
  }
  if (mode === 'server_key') {
    return 'End-to-end encrypted with a key for this session only: media and chat are encrypted in your browser, and the server relays what it cannot read.';
  }
  return 'End-to-end encrypted with a key you share out of band: it never leaves your browser, and the server never sees it.';
}

/** Why the connection ended, in words, by LiveKit's DisconnectReason number. */
export function disconnectText(reason: number | undefined): ErrorText & { rejoin: boolean } {
  switch (reason) {
    case 1: // CLIENT_INITIATED
      return { title: 'You left the meeting', body: 'You can rejoin while it is still running.', rejoin: true };
    case 2: // DUPLICATE_IDENTITY
      return {
        title: 'You joined from somewhere else',
        body: 'The same person joined this meeting from another tab or device, so this one was disconnected.',
        rejoin: true,
      };
    case 4: // PARTICIPANT_REMOVED
      return { title: 'You were removed from the meeting', body: 'A host removed you from this meeting.', rejoin: false };
    case 5: // ROOM_DELETED
    case 10: // ROOM_CLOSED
      return { title: 'The meeting has ended', body: 'Thanks for joining.', rejoin: false };
    case 3: // SERVER_SHUTDOWN
      return { title: 'The server restarted', body: 'The connection to the meeting was lost.', rejoin: true };
    default:
      return {
        title: 'You were disconnected',
        body: 'The connection to the meeting was lost. Check your network and rejoin.',
        rejoin: true,
      };
  }
}
