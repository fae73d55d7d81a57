// Recording and live streaming in the meeting: everyone sees the indicators and is told when a
// recording or stream starts or stops; hosts of plain rooms get the controls, whose requests go
// to the server from here. In an end-to-end encrypted room the server cannot see the media, so
// recording and broadcasting cannot exist there: no control is even created (and the server
// refuses). RecorderModel keeps the state; ui/recorder.ts draws it.
import { ApiError, isWaiting, type Api, type VerifyReply } from './api';
import { recorderJoinText, recorderText, taskErrorText } from './messages';
import { RecorderModel, flagsFromVerify, type Transition } from './recorder';
import { RecorderUi } from './ui/recorder';
import { toast } from './ui/toasts';

/** A recorder error explains the stop that follows it; no second notice for that stop. */
const QUIET_AFTER_ERROR_MS = 5_000;

export interface RecordingOptions {
  api: Api;
  verify: VerifyReply;
  /** We are a host. */
  isAdmin: boolean;
  /** An end-to-end encrypted room (nothing can record there). */
  e2eeRoom: boolean;
  ended: () => boolean;
}

export class Recording {
  readonly ui: RecorderUi;
  private readonly model: RecorderModel;
  private lastError = 0;

  constructor(private readonly o: RecordingOptions) {
    const f = o.verify.room.features ?? {};
    const rec = f.recording_features;
    const bc = f.external_broadcasting_features;
    this.model = new RecorderModel(flagsFromVerify(o.verify));
    this.ui = new RecorderUi({
      model: this.model,
      canRecord: o.isAdmin && !o.e2eeRoom && !!rec?.is_allow && rec.is_allow_cloud !== false,
      canStream: o.isAdmin && !o.e2eeRoom && !!bc?.is_allow && bc.is_allow_rtmp !== false,
      actions: {
        setRecording: (start) => this.setRecording(start),
        startLive: (url, streamKey) => this.startLive(url, streamKey),
        stopLive: () => this.stopLive(),
      },
    });
  }

  /** Just joined: say so if the meeting is being recorded or streamed. */
  joined(): void {
    const text = recorderJoinText(this.model.state);
    if (text) toast(text, 'info');
  }

  /** The server's RECORDER_STATE message. */
  fromServer(state: { recording: boolean; rtmp: boolean }): void {
    this.changed(this.model.fromServer(state));
  }

  /** The server told of an error: a stop that follows soon is explained by it. */
  errorNoticed(): void {
    this.lastError = Date.now();
  }

  /**
   * After a reconnect a state message may have been missed: ask the server again. Not in an
   * E2EE room: nothing can record there, and this reply would carry the session secret again.
   */
  async refresh(): Promise<void> {
    if (this.o.e2eeRoom) return;
    const since = this.model.mark;
    try {
      const v = await this.o.api.verifyToken();
      if (isWaiting(v)) return;
      // Only the recorder flags are wanted from this reply; keep nothing of the secret.
      if (v.e2ee) delete v.e2ee.secret;
      if (!this.o.ended()) this.changed(this.model.fromServer(flagsFromVerify(v), since));
    } catch {
      // The next state message will tell.
    }
  }

  destroy(): void {
    this.ui.destroy();
  }

  private async setRecording(start: boolean): Promise<void> {
    const t = this.model.begin('recording', start);
    if (!t) return;
    try {
      await this.o.api.recording(start ? 'START_RECORDING' : 'STOP_RECORDING');
      this.changed(this.model.done(t));
    } catch (e) {
      this.model.failed(t);
      toast(`${start ? 'Recording did not start.' : 'Recording did not stop.'} ${taskError(e)}`, 'error');
    }
  }

  /** Null once the server accepted, or why it did not (the dialog shows it too). */
  private async startLive(url: string, streamKey: string): Promise<string | null> {
    const t = this.model.begin('rtmp', true);
    if (!t) return 'A request to go live is already on its way.';
    try {
      await this.o.api.rtmp({ url, streamKey });
      this.changed(this.model.done(t));
      return null;
    } catch (e) {
      this.model.failed(t);
      const why = taskError(e);
      toast(`The live stream did not start. ${why}`, 'error');
      return why;
    }
  }

  private async stopLive(): Promise<void> {
    const t = this.model.begin('rtmp', false);
    if (!t) return;
    try {
      await this.o.api.rtmp(null);
      this.changed(this.model.done(t));
    } catch (e) {
      this.model.failed(t);
      toast(`The live stream did not stop. ${taskError(e)}`, 'error');
    }
  }

  /** Tells everyone what started or stopped (a stop right after an error was explained by it). */
  private changed(changes: Transition[]): void {
    if (this.o.ended()) return;
    const quiet = Date.now() - this.lastError < QUIET_AFTER_ERROR_MS;
    for (const c of changes) {
      if (!c.on && quiet) continue;
      toast(recorderText(c.sink, c.on), 'info');
    }
  }
}

function taskError(e: unknown): string {
  return e instanceof ApiError ? taskErrorText(e.serverMsg, e.httpStatus) : 'Something went wrong.';
}
