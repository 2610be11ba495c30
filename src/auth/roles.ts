/** Each role can do everything the roles before it can. */
export const ROLES = ['viewer', 'curator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** What a route needs: `public` routes answer anyone (health, sign-in, static files, the API document). */
export type Access = 'public' | Role;

export const ROLE_ABILITIES: Record<Role, string> = {
  viewer: 'classify photos, read predictions, images, datasets, training runs and models',
  curator: 'viewer + validate or correct predictions, upload labelled photos, build dataset versions, score models on a dataset version',
  admin: 'curator + start training, promote models, manage API tokens (and any other administrative operation)',
};

export const isRole = (value: unknown): value is Role => typeof value === 'string' && (ROLES as readonly string[]).includes(value);

const rank = (access: Access): number => (access === 'public' ? -1 : ROLES.indexOf(access));

/** True when a holder of `held` (undefined = nobody signed in) may use a route needing `needed`. */
export function allows(held: Role | undefined, needed: Access): boolean {
  if (needed === 'public') return true;
  return held !== undefined && rank(held) >= rank(needed);
}
