import { EngineError } from '../errors';

/*
 * The one rule for what fits in the model's context, used by every path that generates (the CLI's generate, the
 * Star answer, the global baseline) and by every planner that has to leave room for an answer: the prompt and
 * every generated token together stay within the model's context length. Positions beyond it were never trained,
 * and every token costs more than the one before.
 */

export interface AnswerBudget {
  /** Tokens generation may produce: the request's, or fewer where the context ends first. */
  readonly maxTokens: number;
  /** The request's maxTokens when it did not fit (and `maxTokens` is the cap); undefined otherwise. */
  readonly requested?: number;
}

/** Tokens left for an answer after `promptTokens` (0 or less: none). */
export function answerRoom(contextLength: number, promptTokens: number): number {
  return contextLength - promptTokens;
}

/**
 * The answer's budget after a prompt of `promptTokens`; an EngineError when nothing is left. `what` names the
 * prompt, as the plural subject of that error: "the prompt's 2048 tokens", "the repository (1900 tokens) and the
 * question (60)".
 */
export function fitAnswer(contextLength: number, promptTokens: number, maxTokens: number, what: string): AnswerBudget {
  const room = answerRoom(contextLength, promptTokens);
  if (room < 1) {
    throw new EngineError(`${what} fill the model's context of ${contextLength} tokens: nothing is left for the answer`);
  }
  return maxTokens <= room ? { maxTokens } : { maxTokens: room, requested: maxTokens };
}
