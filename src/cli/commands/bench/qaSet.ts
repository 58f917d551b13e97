// Ten questions with known answers about a real repository nobody here wrote: npm's own copy of
// npm-registry-fetch (19.x; its defaults, its error classes, its package.json), beside the running Node. An answer
// is right when it contains one of `expect` (case-insensitive). `bench qa` checks that every expected answer is in
// the files first, so a different npm version fails loudly instead of scoring wrong.
import { dirname, resolve } from 'node:path';
import { execPath } from 'node:process';

export const QA_SOURCE = (): string => resolve(dirname(execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'npm-registry-fetch');
export const QA_FILES = ['lib/default-opts.js', 'lib/errors.js', 'package.json'];

export interface QaQuestion {
  readonly question: string;
  readonly expect: readonly string[];
  /** The file whose text holds the answer. */
  readonly file: string;
}

export const QA_QUESTIONS: readonly QaQuestion[] = [
  { question: 'What is the default value of maxSockets?', expect: ['12'], file: 'lib/default-opts.js' },
  { question: 'What is the default registry URL?', expect: ['registry.npmjs.org'], file: 'lib/default-opts.js' },
  { question: 'What is the default HTTP method?', expect: ['GET'], file: 'lib/default-opts.js' },
  { question: 'Which file defines the class HttpErrorAuthOTP?', expect: ['errors.js'], file: 'lib/errors.js' },
  { question: 'What error code does HttpErrorAuthOTP set?', expect: ['EOTP'], file: 'lib/errors.js' },
  { question: 'What error code does HttpErrorAuthIPAddress set?', expect: ['EAUTHIP'], file: 'lib/errors.js' },
  { question: 'Which class do all the HTTP error classes extend?', expect: ['HttpErrorBase'], file: 'lib/errors.js' },
  { question: 'What does the function packageName return?', expect: ['package name', 'decodeURIComponent', 'name of the package'], file: 'lib/errors.js' },
  { question: 'What is the name of this package in package.json?', expect: ['npm-registry-fetch'], file: 'package.json' },
  { question: 'Under which license is this package published?', expect: ['ISC'], file: 'package.json' },
];
