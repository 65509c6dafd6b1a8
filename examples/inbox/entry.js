import { NovuUI } from '@novu/js/ui';
window.NovuUI = NovuUI;
