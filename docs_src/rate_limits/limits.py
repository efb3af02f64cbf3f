from errorkit import Limit

hourly = Limit(100, 3600)  # 100 requests per 3600 seconds, named "100-per-3600s"
parsed = Limit.parse("5/minute; 100/hour")  # the text form: two limits, both enforced

for limit in parsed:
    print(limit.name, limit.limit, limit.period)
