// Answers are model output, so untrusted: rendered as markdown with raw HTML disabled (markdown-it escapes it) and
// only http(s)/mailto links kept. The page's CSP forbids inline script as a second wall. A single newline is a line
// break (`breaks`): models write lines, not markdown paragraphs, and merged lines misread code-like text and lists.
import MarkdownIt from 'markdown-it';

const md = new MarkdownIt({ html: false, linkify: false, typographer: false, breaks: true });
const safeLink = /^(https?:|mailto:)/i;
md.validateLink = (url: string) => safeLink.test(url.trim());

/** HTML for a (possibly partial, still streaming) markdown answer. */
export function renderMarkdown(text: string): string {
  return md.render(text);
}
