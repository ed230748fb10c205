// kafkajs through loophole, for test_kafka.sh:
//   node client.js BOOTSTRAP TOPIC GROUP MARKER
// Prints one JSON object: the brokers DescribeCluster and Metadata named,
// what was produced and consumed (with a consumer group), every address the
// client connected to, and errors. The shell decides what passes.
'use strict'
const net = require('net')
const { Kafka, logLevel } = require('kafkajs')

const [bootstrap, topic, group, marker] = process.argv.slice(2)
const out = { brokers: [], metadata: [], produced: 0, consumed: [], connects: [], errors: {} }

// Every connection kafkajs opens goes through net.connect: record where.
const realConnect = net.connect
net.connect = function (...args) {
  const o = args[0]
  if (o && typeof o === 'object') out.connects.push(`${o.host}:${o.port}`)
  return realConnect.apply(this, args)
}

const kafka = new Kafka({
  clientId: 'loophole-it',
  brokers: [bootstrap],
  logLevel: logLevel.NOTHING,
  retry: { retries: 3, initialRetryTime: 200 },
  connectionTimeout: 3000,
  requestTimeout: 10000,
})

async function step(name, fn) {
  try {
    await fn()
  } catch (e) {
    out.errors[name] = String((e && e.message) || e)
  }
}

async function main() {
  const admin = kafka.admin()
  await step('admin', async () => {
    await admin.connect()
    const c = await admin.describeCluster()
    out.brokers = c.brokers.map((b) => `${b.nodeId}@${b.host}:${b.port}`)
    const md = await admin.fetchTopicMetadata({ topics: [topic] })
    out.metadata = md.topics.map((t) => `${t.name}/${t.partitions.length}`)
  })
  await admin.disconnect().catch(() => {})

  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await step('produce', async () => {
    await producer.connect()
    const messages = []
    for (let i = 0; i < 5; i++) messages.push({ key: `k${i}`, value: `${marker}-js-${i}` })
    const r = await producer.send({ topic, messages, acks: -1 })
    out.produced = messages.length
    out.produceResult = r.length
  })
  await producer.disconnect().catch(() => {})

  const consumer = kafka.consumer({
    groupId: group,
    sessionTimeout: 10000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 1000,
    retry: { retries: 2 },
  })
  await step('consume', async () => {
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for messages')), 40000)
      consumer.on(consumer.events.CRASH, (e) => {
        clearTimeout(timer)
        reject(e.payload.error)
      })
      consumer
        .run({
          eachMessage: async ({ message }) => {
            const v = message.value.toString()
            if (v.startsWith(`${marker}-js-`)) out.consumed.push(v)
            if (out.consumed.length >= 5) {
              clearTimeout(timer)
              resolve()
            }
          },
        })
        .catch(reject)
    })
  })
  await consumer.disconnect().catch(() => {})
  out.consumed.sort()
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().then(
  () => process.exit(0),
  (e) => {
    out.errors.main = String(e)
    process.stdout.write(JSON.stringify(out) + '\n')
    process.exit(1)
  }
)
