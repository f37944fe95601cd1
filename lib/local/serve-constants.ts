/** The local signing key of references and sessions (`npm start -- --serve`, `npm run key-link`), unless REGISTRATION_SIGNING_KEY is set. */
export const LOCAL_SIGNING_KEY = 'local-signing-key-of-the-key-page-0123456789';
