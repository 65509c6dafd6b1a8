// The one browser file index.html loads (built by `npm run build` into dist/novu-inbox.js).
// @novu/js ships no working browser bundle of its UI (its dist/novu.min.js is the headless client
// only, and fails on load in 3.19.2), so esbuild bundles the ES modules of @novu/js/ui here.
import { Novu } from '@novu/js';
import { NovuUI } from '@novu/js/ui';

window.Novu = Novu;
window.NovuUI = NovuUI;
