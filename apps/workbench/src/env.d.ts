/** Stylesheets imported for their side effect: Vite bundles them into the hashed CSS asset. */
declare module "*.css" {}
