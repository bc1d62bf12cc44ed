// The lock validator: two tasks take two mutexes in opposite orders, one after the other, so
// nothing hangs in this run; the validator still reports the deadlock the orders make possible.
import { Mutex, enableLockdep, lockdepReports, disableLockdep } from 'dmabuf/node';

console.log('validator on:', enableLockdep({ mode: 'record' }).enabled);
const accounts = new Mutex('accounts');
const ledger = new Mutex('ledger');
const io = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1));

async function transfer(): Promise<void> {
  await accounts.lock();
  await io();
  await ledger.lock(); // accounts -> ledger
  ledger.unlock();
  accounts.unlock();
}
async function audit(): Promise<void> {
  await ledger.lock();
  await io();
  await accounts.lock(); // ledger -> accounts: the reverse order
  accounts.unlock();
  ledger.unlock();
}

await transfer();
await audit(); // run after transfer, so this run cannot hang, yet:
const [report] = lockdepReports();
console.log(report?.kind, report?.classes.join(' -> '));
console.log(report?.message.split('\n').slice(0, 2).join('\n'));
disableLockdep();
