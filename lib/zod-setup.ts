import { en } from 'zod/locales';
import * as z from 'zod/mini';

// zod/mini (about 25 KiB bundled, against 440 KiB for the classic API) loads no messages by default: English ones
// make rejection reasons readable. Imported by every module that validates.
z.config(en());
