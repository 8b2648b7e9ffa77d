/**
 * Yes/no questions on the terminal. Only asked when stdin and stderr are terminals; everywhere
 * else the caller refuses and names the flag that says yes.
 * @module
 */
import process from "node:process";
import { createInterface } from "node:readline/promises";

/** Asks a yes/no question on stderr; anything but y/yes is no. */
export async function askYesNo(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
