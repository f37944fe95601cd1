/**
 * `npm run key-link -- --customer C [--product P]`: prints a link to the key page for a customer, signed as the
 * registration hook signs its references (lib/registration/reference.ts), for signups that do not come from AWS
 * Marketplace and for trying the page locally. The seller's own app signs the same way (docs/key-page.md, "Links
 * from your own app"). Exit codes as every command's (lib/command-line.ts).
 */

import { EXIT, parseCommandLine, positiveNumber, runCommand, UsageError } from '../command-line.js';
import { CUSTOMER_ID_PATTERN, PRODUCT_CODE_PATTERN } from '../customer-key/naming.js';
import { MAX_REFERENCE_LIFETIME_SECONDS } from '../key-page/session.js';
import { LOCAL_SIGNING_KEY } from '../local/serve-constants.js';
import { MIN_SIGNING_KEY_LENGTH } from '../registration/config.js';
import { signReference } from '../registration/reference.js';

const USAGE = `Usage: npm run key-link -- --customer C [--product P] [--page URL] [--ttl S]

Prints a link to the key page for customer C (and product P: without one, the customer's key of no product,
\`_/<customer>\`), signed with REGISTRATION_SIGNING_KEY (default: the local key of npm start -- --serve). The link
works once, in one browser, for --ttl seconds.

  --customer C   the customer id of the key (A-Z a-z 0-9 _ + = . @ -, at most 256)
  --product P    the product code (default: none)
  --page URL     the key page (default: http://127.0.0.1:8080/key/, npm start -- --serve)
  --ttl S        seconds the link is valid, at most ${MAX_REFERENCE_LIFETIME_SECONDS} (default 600)

Exit code: 0 printed, 2 a bad flag or value.`;

async function main(): Promise<number> {
  const { values } = parseCommandLine(USAGE, {
    customer: { type: 'string' },
    product: { type: 'string' },
    page: { type: 'string', default: 'http://127.0.0.1:8080/key/' },
    ttl: { type: 'string', default: '600' },
  });
  const customer = values.customer;
  if (!customer || !CUSTOMER_ID_PATTERN.test(customer))
    throw new UsageError('--customer is required: 1 to 256 characters of A-Z a-z 0-9 _ + = . @ -');
  if (values.product !== undefined && !PRODUCT_CODE_PATTERN.test(values.product)) throw new UsageError('--product is not a product code');
  const ttl = positiveNumber('ttl', values.ttl);
  if (ttl > MAX_REFERENCE_LIFETIME_SECONDS) throw new UsageError(`--ttl is at most ${MAX_REFERENCE_LIFETIME_SECONDS} seconds`);
  let page: URL;
  try {
    page = new URL(values.page ?? '');
  } catch {
    throw new UsageError('--page is not a URL');
  }
  const key = process.env.REGISTRATION_SIGNING_KEY || LOCAL_SIGNING_KEY;
  if (key.length < MIN_SIGNING_KEY_LENGTH)
    throw new UsageError(`REGISTRATION_SIGNING_KEY must be at least ${MIN_SIGNING_KEY_LENGTH} characters`);
  page.searchParams.set(
    'ref',
    signReference({ customerId: customer, productCode: values.product ?? '' }, key, new Date(Date.now() + ttl * 1000)),
  );
  console.log(page.toString());
  return EXIT.ok;
}

runCommand('npm run key-link', main);
