// LiveKit's key provider for Enclave's keys: one shared key per epoch, in the slot of its
// generation (epochs.ts), installed and put to use in two separate steps. livekit-client's own
// ExternalE2EEKeyProvider sets slot 0 only, and its base class switches the sending slot whenever
// a slot is given, so this provider tells the SDK itself which of the two it means.
import { BaseKeyProvider, KeyProviderEvent, createKeyMaterialFromBuffer, type KeyInfo } from 'livekit-client';

import { keySlot, KEYRING_SIZE } from './epochs';

export class EpochKeyProvider extends BaseKeyProvider {
  private readonly slots = new Map<number, KeyInfo>();
  private sending = 0;

  constructor() {
    // One key for everyone (shared); a frame that does not decrypt never invalidates it or
    // triggers a ratchet (one sender with another key must not stop the rest from decoding).
    super({ sharedKey: true, ratchetWindowSize: 0, failureTolerance: -1, keyringSize: KEYRING_SIZE });
  }

  /**
   * Installs the media key of epoch `generation` (raw bytes, which the caller wipes). With
   * `andSend`, frames are encrypted with it from now on; otherwise it only decrypts.
   */
  async install(raw: ArrayBuffer, generation: number, andSend: boolean): Promise<void> {
    const keyIndex = keySlot(generation);
    const info: KeyInfo = { key: await createKeyMaterialFromBuffer(raw), participantIdentity: undefined, keyIndex };
    this.slots.set(keyIndex, info);
    if (andSend) this.sending = keyIndex;
    this.emit(KeyProviderEvent.SetKey, info, andSend);
  }

  /** Encrypts with the installed epoch `generation` from now on. */
  send(generation: number): void {
    const info = this.slots.get(keySlot(generation));
    if (!info) return;
    this.sending = info.keyIndex ?? 0;
    this.emit(KeyProviderEvent.SetKey, info, true);
  }

  // What the SDK asks when it (re)connects: every installed key, and which one to send with.
  override getKeys(): KeyInfo[] {
    return [...this.slots.values()];
  }

  override getLatestManuallySetKeyIndex(): number {
    return this.sending;
  }
}
