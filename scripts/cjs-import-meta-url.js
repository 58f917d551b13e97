// Injected into the CommonJS bundles (scripts/build.mjs): import.meta.url, which CommonJS lacks, as the bundle's
// own file URL.
import { pathToFileURL } from 'node:url';

export const cjsImportMetaUrl = pathToFileURL(__filename).href;
