import itertools

from fastapi import FastAPI, Request

import errorkit
from errorkit import APIKeyAuth, ErrorKit, Quotas

store = errorkit.backend_from_env()
app = FastAPI()
agents: dict[str, tuple[str, str]] = {}  # agent id -> (workspace id, name): your database
agent_ids = itertools.count(1)

quotas = Quotas(
    store,
    limits={"Agents": {"Developer": 2, "Growth": 50}},
    resources={"agents": "Agents", "agent_templates": "Agents"},  # two resources, one group, one limit
    default_plan="Developer",  # a plan the table does not name counts as Developer
)


@app.post("/agents/import", status_code=201)
async def import_agents(request: Request, names: list[str]) -> list[str]:
    principal = errorkit.get_principal(request.scope)
    assert principal is not None  # (APIKeyAuth lets no request without a key reach the route)
    for name in names:
        async with await quotas.hold(principal, "agents"):  # raises Refused: 402 when full
            agents[f"a_{next(agent_ids)}"] = (principal.workspace_id, name)  # leaving normally confirms it
    return sorted(agent for agent, (owner, _) in agents.items() if owner == principal.workspace_id)


async def recount(workspace_id: str) -> int:
    """Set the usage from the database, e.g. after agents were deleted by a job errorkit did not see."""
    rows = sum(1 for owner, _ in agents.values() if owner == workspace_id)
    await quotas.set_usage(workspace_id, "agents", rows)
    return await quotas.usage(workspace_id, "agents")


ErrorKit(format="envelope").install(app, auth=APIKeyAuth(store), quotas=quotas)
