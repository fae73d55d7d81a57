// Who is in the meeting, as every part of it names them: everyone in join order, the names they
// chose (their profile messages), who is a host, whose key differs from ours, and what the
// server lets each of them publish.
import { LocalParticipant, type Participant, type Room } from 'livekit-client';

import type { KeyStatus } from './keystatus';
import { cleanName } from './protocol';

// LiveKit's protocol numbers of the sources a permission lists (`canPublishSources`).
export const SOURCE_CAMERA = 1;
export const SOURCE_MICROPHONE = 2;
export const SOURCE_SCREEN = 3;

/** Whether the permission the server announced for `p` lets them publish `source`. */
export function sourceAllowed(p: Participant, source: number): boolean {
  const perm = p.permissions;
  if (!perm) return true;
  return perm.canPublish && (perm.canPublishSources.length === 0 || perm.canPublishSources.includes(source as never));
}

export interface RosterOptions {
  /** We are a host. */
  isAdmin: boolean;
  encrypted: boolean;
  keyStatus: KeyStatus;
}

export class Roster {
  private readonly names = new Map<string, string>();

  constructor(
    private readonly room: Room,
    private readonly o: RosterOptions,
  ) {}

  /** Us first, then the others in the order they joined. */
  participants(): Participant[] {
    const remotes = [...this.room.remoteParticipants.values()].sort((a, b) => (a.joinedAt?.getTime() ?? 0) - (b.joinedAt?.getTime() ?? 0));
    return [this.room.localParticipant, ...remotes];
  }

  displayName(identity: string): string {
    const named = this.names.get(identity);
    if (named) return named;
    const p = identity === this.room.localParticipant.identity ? this.room.localParticipant : this.room.getParticipantByIdentity(identity);
    return cleanName(p?.name || '') || identity;
  }

  /** Keeps the name `identity` chose; whether it changed. */
  setName(identity: string, name: string): boolean {
    if (name === this.names.get(identity)) return false;
    this.names.set(identity, name);
    return true;
  }

  /** They left. */
  forget(identity: string): void {
    this.names.delete(identity);
  }

  isHost(p: Participant): boolean {
    if (p instanceof LocalParticipant) return this.o.isAdmin;
    try {
      const m = JSON.parse(p.metadata || '{}') as { is_admin?: unknown };
      return m.is_admin === true;
    } catch {
      return false;
    }
  }

  /** Their key differs from ours (an encrypted room). */
  mismatch(p: Participant): boolean {
    if (!this.o.encrypted) return false;
    if (p instanceof LocalParticipant) return false;
    return this.o.keyStatus.isMismatched(p.identity);
  }
}
