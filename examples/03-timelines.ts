// A timeline syncobj fed by a software timeline: points, lookups, waiting for submission.
import { Syncobj, SwSyncTimeline } from 'dmabuf';

using producer = new SwSyncTimeline('uploads');
using timeline = new Syncobj();
timeline.addPoint(producer.createFence(1), 1);
timeline.addPoint(producer.createFence(2), 2);

const point2 = timeline.findFence(2); // waiting for point 2 covers point 1 too
producer.inc(2);
console.log('point 2 signaled:', await (await point2).wait());
console.log('last signaled point:', timeline.query());

// A consumer may ask for a point before anyone submitted it, with a bounded wait.
const later = timeline.findFence(3, { waitForSubmit: true, timeout: 1000 });
timeline.addPoint(producer.createFence(3), 3);
producer.inc();
console.log('point 3 signaled:', await (await later).wait(), 'query:', timeline.query());
