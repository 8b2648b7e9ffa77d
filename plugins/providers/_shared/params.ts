/**
 * Parameter checks every SDK-based provider shares. Loom keeps one whole answer per row, so a
 * parameter that would make the provider return several (and charge for them) or stream it is
 * refused before any work, as is a provider's own structured-output field when the job also has
 * a `schema` (the two would fight).
 * @module
 */
import type { GenerateParams, ParamProblem, ParamsContext } from "../../../core/spec/provider.ts";

/** Problems common to every provider; `schemaParam` is the provider's own structured-output field. */
export function commonParamProblems(
  params: GenerateParams,
  context: ParamsContext,
  names: { readonly count: string; readonly schemaParam: string },
): ParamProblem[] {
  const problems: ParamProblem[] = [];
  const count = params[names.count];
  if (count !== undefined && count !== 1) {
    problems.push({
      param: names.count,
      message: `Loom keeps one answer per row; ${names.count}: ${
        JSON.stringify(count)
      } would pay for answers it drops`,
    });
  }
  if (params.stream !== undefined && params.stream !== false) {
    problems.push({
      param: "stream",
      message: "Loom reads whole answers; remove stream from params",
    });
  }
  if (context.structured && params[names.schemaParam] !== undefined) {
    problems.push({
      param: names.schemaParam,
      message:
        `the job's schema sets ${names.schemaParam}; give the schema only once, with schema:`,
    });
  }
  return problems;
}
