"""省级汽车维修电子健康档案系统: the application (collection, one-car-one-file history, exchange)."""
