import type { EventBus } from '../../ports/event-bus.ts';
import type { DeadLetter } from './dead-letter.ts';

/** What both adapters offer beyond the port: the dead letters this process recorded (tests, ops). */
export interface EventBusAdapter extends EventBus {
  deadLetters(): DeadLetter[];
}
