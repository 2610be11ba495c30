export { allows, isRole, ROLE_ABILITIES, ROLES, type Access, type Role } from './roles.js';
export { closeSession, openSession, SESSION_COOKIE, sessionPrincipal } from './sessions.js';
export { authenticateSecret, createToken, parseRole, revokeToken, type Principal } from './tokens.js';
