/**
 * Every chaos scenario, in the order a run tries them.
 * @module
 */
import type { Scenario } from "../scenario.ts";
import { randomKills, syncKills } from "./kill.ts";
import { lostCreates } from "./lost-create.ts";
import { concurrentCommands } from "./concurrent.ts";
import { fuzzedInputs } from "./fuzz.ts";
import { fetchFlags } from "./fetch-flags.ts";
import { userFiles } from "./files.ts";
import { whitespaceKeys } from "./keys.ts";
import { cacheClear, poisonedRow, rateLimitStorm } from "./sync.ts";
import { disks } from "./disks.ts";

/** The scenarios `scripts/chaos.ts` runs (all of them unless `--scenario` picks some). */
export const SCENARIOS: readonly Scenario[] = [
  randomKills,
  syncKills,
  lostCreates,
  concurrentCommands,
  fuzzedInputs,
  userFiles,
  whitespaceKeys,
  fetchFlags,
  poisonedRow,
  rateLimitStorm,
  cacheClear,
  disks,
];
