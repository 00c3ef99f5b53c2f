import ConveyorCLI

// The example app: its job types come from Jobs/ through the ConveyorJobsPlugin.
await ConveyorCLI.main(CLIApp(name: "conveyor", registry: WorkerJobType.registry()) { redis in DemoApp(redis: redis) })
