// Demo identities shared by the IdPs, the dev script and the tests.

/** Demo accounts. `sub` differs from the username on purpose. */
export const DEMO_USERS = Object.freeze({
  alice: { sub: 'sub-alice-7c1e', preferred_username: 'alice', email: 'alice@example.edu', email_verified: true, name: 'Alice Liddell', groups: ['students'] },
  bob: { sub: 'sub-bob-52d9', preferred_username: 'bob', email: 'bob@example.edu', email_verified: true, name: 'Bob Builder', groups: ['students'] },
  carol: { sub: 'sub-carol-a403', preferred_username: 'carol', email: 'carol@example.edu', email_verified: true, name: 'Carol Danvers', groups: ['staff'] },
  mallory: { sub: 'sub-mallory-e66b', preferred_username: 'mallory', email: 'mallory@example.net', email_verified: false, name: 'Mallory Mallet', groups: [] },
});

/** Cookie names the demo IdP uses (prefixed so a test can tell them from the worker's). */
export const IDP_COOKIE_NAMES = Object.freeze({
  session: 'idp_session',
  interaction: 'idp_interaction',
  resume: 'idp_interaction_resume',
});
