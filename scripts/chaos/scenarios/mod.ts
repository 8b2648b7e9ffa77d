/**
 * Every chaos scenario, in the order a run tries them.
 * @module
 */
import type { Scenario } from "../scenario.ts";
import { randomKills } from "./kill.ts";
import { lostCreates } from "./lost-create.ts";
import { cacheClear, poisonedRow, rateLimitStorm } from "./sync.ts";
import { disks } from "./disks.ts";

/** The scenarios `scripts/chaos.ts` runs (all of them unless `--scenario` picks some). */
export const SCENARIOS: readonly Scenario[] = [
  randomKills,
  lostCreates,
  poisonedRow,
  rateLimitStorm,
  cacheClear,
  disks,
];
