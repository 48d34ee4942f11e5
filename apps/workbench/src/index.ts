/** The workbench is a browser bundle (vite.config.ts), not a library: the web role serves its build output. */
export const BUILD_DIR = "dist"
