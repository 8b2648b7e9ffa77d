/**
 * Yes/no questions on the terminal. Only asked when stdin and stderr are terminals; everywhere
 * else the caller refuses and names the flag that says yes.
 * @module
 */
import process from "node:process";
import { createInterface } from "node:readline";
import { LoomInterruptedError } from "../core/base/errors.ts";

/**
 * Asks a yes/no question on stderr; anything but y/yes is no, and so is end of input (Ctrl-D).
 * Ctrl-C at the prompt rejects with `LoomInterruptedError` (exit code 130), nothing changed.
 */
export function askYesNo(question: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    let settled = false;
    const settle = (finish: () => void) => {
      if (settled) return;
      settled = true;
      rl.close();
      finish();
    };
    rl.on("SIGINT", () => {
      process.stderr.write("\n");
      settle(() =>
        reject(new LoomInterruptedError("interrupted at the prompt; nothing was changed"))
      );
    });
    rl.on("close", () => {
      if (!settled) process.stderr.write("\n");
      settle(() => resolve(false));
    });
    rl.question(
      `${question} [y/N] `,
      (answer) => settle(() => resolve(/^y(es)?$/i.test(answer.trim()))),
    );
  });
}
