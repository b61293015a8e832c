import { runStoreContract } from './store.contract.ts';
import { testStoreFactories } from './testing.ts';

for (const factory of testStoreFactories()) runStoreContract(factory);
