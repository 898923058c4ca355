/**
 * client/channels — one connection (channel) per relay, keyed by RSA identity: opened on
 * first use, pinned to the RSA and Ed25519 identities the consensus lists, reused while
 * alive, and closed once it has carried no circuit for the idle timeout (tor's client
 * rule, channelpadding.c `channelpadding_get_channel_idle_timeout`: 180 s + up to 90 s).
 *
 * Layer: thin I/O over client/relay. Opening is shared: concurrent callers for one relay
 * wait on one connect. Not here: choosing relays (path/) or circuits (client/torclient).
 */
import { randomInt } from 'node:crypto';
import { Relay } from './relay.js';
import type { WaitOptions } from './wait.js';

/** A relay to connect to (`RelayInfo` is one). */
export interface ChannelTarget {
  readonly rsa: string;
  readonly ed25519?: string | undefined;
  readonly address: string;
  readonly orPort: number;
}

export interface ChannelManagerOptions {
  /** Close a connection after this long without circuits (default 180-270 s, tor's). */
  idleTimeoutMs?: number;
  /** How to connect (default: `Relay.connect`, pinned to the target's identities). */
  connect?: (target: ChannelTarget, wait: Required<WaitOptions>) => Promise<Relay>;
}

interface Entry {
  opening: Promise<Relay>;
  relay: Relay | undefined;
  idleSince: number | undefined;
  idleTimeoutMs: number;
}

export class ChannelManager {
  private readonly entries = new Map<string, Entry>();
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;
  /** Connections opened and closed for being idle (for tests and stats). */
  readonly counters = { opened: 0, reused: 0, idleClosed: 0 };

  constructor(private readonly options: ChannelManagerOptions = {}) {}

  /** Open connections (and those being opened). */
  get size(): number {
    return this.entries.size;
  }

  /** The live connection to `target`, reused, or a new one pinned to its identities. */
  async get(target: ChannelTarget, wait: Required<WaitOptions>): Promise<Relay> {
    if (this.closed) throw new Error('the channel manager is closed');
    const entry = this.entries.get(target.rsa);
    if (entry) {
      const relay = await entry.opening.catch(() => undefined);
      if (relay?.isAlive() && this.entries.get(target.rsa) === entry) {
        entry.idleSince = undefined;
        this.counters.reused++;
        return relay;
      }
      if (this.entries.get(target.rsa) === entry) this.entries.delete(target.rsa);
      if (relay) void relay.close();
    }
    return this.open(target, wait);
  }

  /** Closes every connection. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    const entries = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(entries.map((e) => e.opening.then((r) => r.close(), () => undefined)));
  }

  private open(target: ChannelTarget, wait: Required<WaitOptions>): Promise<Relay> {
    const connect = this.options.connect ?? ((t, w) => Relay.connect(t.address, t.orPort, undefined, { ...w, identity: { rsa: t.rsa, ed25519: t.ed25519 } }));
    const opening = connect(target, wait);
    const entry: Entry = { opening, relay: undefined, idleSince: undefined, idleTimeoutMs: this.idleTimeout() };
    this.entries.set(target.rsa, entry);
    opening.then(
      (relay) => {
        this.counters.opened++;
        entry.relay = relay;
        if (this.closed) void relay.close();
        else this.startSweeper();
      },
      () => {
        if (this.entries.get(target.rsa) === entry) this.entries.delete(target.rsa);
      },
    );
    return opening;
  }

  private idleTimeout(): number {
    return this.options.idleTimeoutMs ?? 180_000 + randomInt(90_000);
  }

  /** Checks idle connections a few times per timeout; the timer runs only while there are connections. */
  private startSweeper(): void {
    if (this.sweeper) return;
    const every = Math.max(25, Math.min(10_000, Math.floor((this.options.idleTimeoutMs ?? 180_000) / 4)));
    this.sweeper = setInterval(() => this.sweep(Date.now()), every);
    this.sweeper.unref();
  }

  private sweep(now: number): void {
    for (const [rsa, entry] of this.entries) {
      const relay = entry.relay;
      if (!relay) continue;
      if (!relay.isAlive()) {
        this.entries.delete(rsa);
        void relay.close();
        continue;
      }
      if (relay.openCircuits.length > 0) {
        entry.idleSince = undefined;
        continue;
      }
      entry.idleSince ??= now;
      if (now - entry.idleSince >= entry.idleTimeoutMs) {
        this.entries.delete(rsa);
        this.counters.idleClosed++;
        void relay.close();
      }
    }
    if (this.entries.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}
