// The Pulumi program: read config, build the components, export the connector's configuration as stack outputs.
import { readConfig } from './config.ts';
import { provision } from './provision.ts';

// A default export, so that outputs of features left off are absent rather than exported as undefined; a promise,
// which Pulumi awaits, because a customer stack reads its home stack before declaring anything.
export default provision(readConfig());
