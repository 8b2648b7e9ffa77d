/**
 * Holding a store lease while work is done: taken (or taken over from a holder that is gone),
 * renewed in the background while the work runs, released at the end. A holder that is killed
 * stops renewing; its lease expires after `LOOM_LEASE_SECONDS` (default 60) and another Loom takes
 * it over — at once when the holder was a process on this machine that no longer runs.
 *
 * A lease is a promise, not a guarantee (a paused process may outlive its lease): what it guards
 * is also written with compare-and-set, so a holder that lost its lease fails on its next write
 * instead of overwriting the new holder's work.
 * @module
 */
import { hostname } from "node:os";
import process from "node:process";
import { clearInterval, setInterval } from "node:timers";
import { LoomBusyError } from "../base/errors.ts";
import { isAlive } from "../data/output.ts";
import type { LeaseInfo, StorageV2 } from "../spec/storage.ts";

/** Default lease time when `LOOM_LEASE_SECONDS` is unset. */
export const DEFAULT_LEASE_MS = 60_000;

/** A lease this process holds. */
export interface HeldLease {
  /** True once a renewal found the lease taken over by another holder. */
  readonly lost: boolean;
  /** Stops renewing and releases the lease (once; later calls do nothing). */
  release(): Promise<void>;
}

/**
 * This machine's name in lease holders: `LOOM_HOST_ID` when set (containers that share a host
 * name must set it, or they would take each other's leases for dead processes), else the host name.
 */
export function machineName(env: Readonly<Record<string, string | undefined>>): string {
  return env.LOOM_HOST_ID?.trim() || hostname();
}

/** The lease time `env` asks for. */
export function leaseMs(env: Readonly<Record<string, string | undefined>>): number {
  const seconds = Number(env.LOOM_LEASE_SECONDS);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : DEFAULT_LEASE_MS;
}

const HOLDER = /^pid (\d+) on (.+)$/;

/** Whether `lease` is held by a process of this machine that no longer runs. */
function holderGone(lease: LeaseInfo, machine: string): boolean {
  const match = HOLDER.exec(lease.holder);
  return match !== null && match[2] === machine && Number(match[1]) !== process.pid &&
    !isAlive(Number(match[1]));
}

/**
 * Takes lease `name` of `storage` for this process.
 * @param busy What to say when another Loom holds it (`job X is being worked on by another Loom`).
 * @throws LoomBusyError naming the holder when it is held by a live Loom.
 */
export async function takeLease(
  storage: StorageV2,
  name: string,
  busy: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<HeldLease> {
  const ttl = leaseMs(env);
  const machine = machineName(env);
  const holder = `pid ${process.pid} on ${machine}`;
  let attempt = await storage.leases.acquire(name, holder, ttl);
  if (!attempt.ok && holderGone(attempt.current, machine)) {
    // Two processes may find the same dead holder: `replacing` lets only one of them in.
    attempt = await storage.leases.acquire(name, holder, ttl, attempt.current.token);
  }
  if (!attempt.ok) {
    const seconds = Math.max(1, Math.ceil((attempt.current.expiresAt - Date.now()) / 1000));
    throw new LoomBusyError(
      `${busy} (${attempt.current.holder}); try again when it is done` +
        ` (a holder that was killed lets go within ${seconds} s)`,
    );
  }
  const { token } = attempt.lease;
  let lost = false;
  let released = false;
  const timer = setInterval(() => {
    storage.leases.renew(name, token, ttl).then(
      (held) => {
        if (!held && !released) lost = true;
      },
      // A store that cannot be reached now fails the next write, which says why.
      () => {},
    );
  }, Math.max(1_000, ttl / 3));
  // node:timers' unref on both runtimes: a held lease never keeps the process alive.
  timer.unref();
  return {
    get lost() {
      return lost;
    },
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      await storage.leases.release(name, token);
    },
  };
}
