export type { EncodeOptions, StreamDecoder, Tokenizer, TokenizerKind } from './types';
export { tokenizerFromGguf } from './fromGguf';
export { tokenizerFromHfJson } from './fromHfJson';
export { createStreamDecoder, type StreamDecoderOptions } from './streamDecoder';
export {
  CONTEXT_PLACEHOLDER,
  PLAIN_CHAT_TEMPLATE,
  renderChat,
  splitChatPrompt,
  type ChatMessage,
  type ChatPromptParts,
  type ChatRole,
  type RenderChatOptions,
  type SplitChatPrompt,
} from './chatTemplate';
export { encodeRenderedPrompt } from './promptEncoding';
