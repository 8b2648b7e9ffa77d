#!/usr/bin/env node
/**
 * Loom's executable entry (`loom`, `deno run -A cli/main.ts`). Exit codes: 0 success, 1 the run
 * failed, 2 usage error or unsupported operation.
 * @module
 */
import process from "node:process";
import { main } from "./program.ts";

process.exitCode = await main(process.argv.slice(2));
