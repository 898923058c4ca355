/**
 * testnet/ports — which 127.0.0.1 ports a network uses, and whether they are free.
 *
 * Ports follow a fixed layout from one base port, so the same network gets the
 * same ports (and the key cache, keyed by ports, keeps working):
 *   node i (authorities, then relays, then exits): ORPort base+i,
 *   DirPort base+100+i, ControlPort base+200+i; the client's ControlPort
 *   base+299, its SocksPort base+300; the HTTP file server base+301. With delayed
 *   links (the launcher's delay forwarders, delay.ts) the ORPort base+i is the
 *   forwarder's, advertised in the descriptor, and tor itself listens on base+400+i.
 * With an explicit base port a taken port is an error that names it; by
 * default the first block (from 15000, every 500) whose ports are all free is
 * used. A free-port check cannot rule out a race with another process, so the
 * launcher also recognises tor's own "Address already in use" message.
 */
import { createServer } from 'node:net';
import { BadArgumentError } from '../errors.js';
import { PortInUseError } from './errors.js';

export type RelayRole = 'authority' | 'relay' | 'exit';
export type NodeRole = RelayRole | 'client';

/** The most relays (authorities + relays + exits) one layout has room for. */
export const MAX_RELAY_NODES = 99;
export const DEFAULT_BASE_PORT = 15000;
const AUTO_BASE_STEP = 500;
const AUTO_BASE_LAST = 60000;

export interface RelayPorts {
  /** The ORPort in the descriptor and the consensus (with delayed links: the forwarder's). */
  readonly orPort: number;
  /** With delayed links only: where tor itself listens for ORPort connections (base+400+i). */
  readonly realOrPort?: number;
  readonly dirPort: number;
  readonly controlPort: number;
}

export interface PortPlan {
  readonly basePort: number;
  /** Per relay node, in layout order (authorities, relays, exits). */
  readonly relays: readonly RelayPorts[];
  readonly client: { readonly socksPort: number; readonly controlPort: number } | undefined;
  readonly httpPort: number;
}

export interface PortUse {
  readonly port: number;
  /** e.g. "ORPort of relay0" */
  readonly purpose: string;
}

/** Where tor listens for ORPort connections: `realOrPort` with delayed links, else the ORPort. */
export function listenOrPort(ports: RelayPorts): number {
  return ports.realOrPort ?? ports.orPort;
}

/** Offset of tor's own ORPort listener from the advertised one when links are delayed. */
export const REAL_OR_PORT_OFFSET = 400;

/**
 * Lays out ports for `relayCount` relay nodes and an optional client from `basePort`;
 * `delayedLinks` moves tor's ORPort listeners to base+400+i (the forwarders take base+i).
 */
export function planPorts(basePort: number, relayCount: number, withClient: boolean, delayedLinks = false): PortPlan {
  const top = delayedLinks ? REAL_OR_PORT_OFFSET + MAX_RELAY_NODES - 1 : 301;
  if (!Number.isInteger(basePort) || basePort < 1024 || basePort + top > 65535) {
    throw new BadArgumentError(`basePort must be an integer from 1024 to ${65535 - top}, got ${basePort}`);
  }
  if (!Number.isInteger(relayCount) || relayCount < 1 || relayCount > MAX_RELAY_NODES) {
    throw new BadArgumentError(`the network must have 1 to ${MAX_RELAY_NODES} relays including authorities, got ${relayCount}`);
  }
  const relays: RelayPorts[] = [];
  for (let i = 0; i < relayCount; i++) {
    const orPort = basePort + i;
    const common = { orPort, dirPort: basePort + 100 + i, controlPort: basePort + 200 + i };
    relays.push(delayedLinks ? { ...common, realOrPort: basePort + REAL_OR_PORT_OFFSET + i } : common);
  }
  return {
    basePort,
    relays,
    client: withClient ? { socksPort: basePort + 300, controlPort: basePort + 299 } : undefined,
    httpPort: basePort + 301,
  };
}

/** Every port of the plan with what it is for; `nicks[i]` names relay node i. */
export function portUses(plan: PortPlan, nicks: readonly string[]): PortUse[] {
  const uses: PortUse[] = [];
  plan.relays.forEach((ports, i) => {
    const nick = nicks[i] ?? `node${i}`;
    if (ports.realOrPort === undefined) uses.push({ port: ports.orPort, purpose: `ORPort of ${nick}` });
    else {
      uses.push({ port: ports.orPort, purpose: `advertised ORPort of ${nick} (its delay forwarder)` });
      uses.push({ port: ports.realOrPort, purpose: `ORPort of ${nick} (tor's own, behind the forwarder)` });
    }
    uses.push({ port: ports.dirPort, purpose: `DirPort of ${nick}` });
    uses.push({ port: ports.controlPort, purpose: `ControlPort of ${nick}` });
  });
  if (plan.client) {
    uses.push({ port: plan.client.socksPort, purpose: 'SocksPort of client' });
    uses.push({ port: plan.client.controlPort, purpose: 'ControlPort of client' });
  }
  uses.push({ port: plan.httpPort, purpose: 'HTTP file server' });
  return uses;
}

/** Resolves true when nothing listens on 127.0.0.1:`port` (by binding it for a moment). */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/** The first use whose port is taken, or undefined when all are free. */
export async function firstTakenPort(uses: readonly PortUse[]): Promise<PortUse | undefined> {
  for (const use of uses) {
    if (!(await isPortFree(use.port))) return use;
  }
  return undefined;
}

/**
 * Picks the port plan: at `basePort` when given (throwing PortInUseError if a
 * port is taken), else the first block from DEFAULT_BASE_PORT that is free.
 */
export async function choosePortPlan(basePort: number | undefined, nicks: readonly string[], withClient: boolean, delayedLinks = false): Promise<PortPlan> {
  if (basePort !== undefined) {
    const plan = planPorts(basePort, nicks.length, withClient, delayedLinks);
    const taken = await firstTakenPort(portUses(plan, nicks));
    if (taken) throw new PortInUseError(taken.port, taken.purpose);
    return plan;
  }
  for (let base = DEFAULT_BASE_PORT; base <= AUTO_BASE_LAST; base += AUTO_BASE_STEP) {
    const plan = planPorts(base, nicks.length, withClient, delayedLinks);
    if (!(await firstTakenPort(portUses(plan, nicks)))) return plan;
  }
  throw new PortInUseError(DEFAULT_BASE_PORT, 'every candidate port block', `no block of free ports between ${DEFAULT_BASE_PORT} and ${AUTO_BASE_LAST}`);
}

/** Recognises tor's bind failure in its log: `Could not bind to 127.0.0.1:15003: Address already in use`. */
export function findBindFailure(logText: string): { address: string; port: number } | undefined {
  const match = /Could not bind to ([0-9.]+|\[[0-9a-fA-F:]+\]):(\d+): Address already in use/.exec(logText);
  if (!match) return undefined;
  return { address: match[1] ?? '', port: Number(match[2]) };
}
