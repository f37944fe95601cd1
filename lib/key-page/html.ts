/**
 * Escape by construction: every page of the key page is built with the {@link html} tagged template, which escapes
 * each interpolated value unless it is already {@link SafeHtml} (a fragment built by `html` itself). There is no
 * other way to put text into a page: no string concatenation of HTML anywhere.
 */

/** A fragment of HTML that is safe to insert as it is: only {@link html} and {@link joinHtml} make one. */
export class SafeHtml {
  readonly #text: string;
  /** @internal use {@link html} */
  constructor(text: string, token: symbol) {
    if (token !== MINT) throw new Error('SafeHtml is made by the html tagged template only');
    this.#text = text;
  }
  toString(): string {
    return this.#text;
  }
}

const MINT = Symbol('SafeHtml');

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Text escaped for an element's content or a quoted attribute value. Pure. */
export const escapeHtml = (text: string): string => text.replace(/[&<>"'`]/g, (c) => ENTITIES[c] ?? c);

type Interpolated = SafeHtml | string | number | undefined | null | false | readonly Interpolated[];

function render(value: Interpolated): string {
  if (value === undefined || value === null || value === false) return '';
  if (value instanceof SafeHtml) return value.toString();
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/** The tagged template: literal parts as written, every `${value}` escaped (arrays joined, `undefined`/`false` omitted). */
export function html(strings: TemplateStringsArray, ...values: Interpolated[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out, MINT);
}

/**
 * A constant of the page's own code inserted as it is: the style sheet and the script, whose hashes the
 * Content-Security-Policy names (the content of `<style>` and `<script>` is raw text, which entity escaping would
 * change). Never for anything that comes from a request, a record or the configuration.
 */
export const constantHtml = (text: string): SafeHtml => new SafeHtml(text, MINT);
