@_exported import ConveyorRedis
