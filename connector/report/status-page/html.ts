/**
 * HTML built from template literals with every interpolated value escaped, unless it is markup made here (`Markup`).
 * Tenant names, error messages and domains come from files and from Microsoft: none of them is ever markup.
 */

export class Markup {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toString(): string {
    return this.text;
  }
}

type Part = Markup | string | number | undefined | null | false | readonly Part[];

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => escapes[char]!);
}

function partText(part: Part): string {
  if (part === undefined || part === null || part === false) return '';
  if (part instanceof Markup) return part.text;
  if (Array.isArray(part)) return (part as readonly Part[]).map(partText).join('');
  return escapeHtml(String(part));
}

export function html(strings: TemplateStringsArray, ...parts: Part[]): Markup {
  let text = strings[0]!;
  for (let i = 0; i < parts.length; i += 1) text += partText(parts[i]!) + strings[i + 1]!;
  return new Markup(text);
}
