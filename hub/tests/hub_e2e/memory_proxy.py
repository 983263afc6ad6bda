"""A JupyterHub Proxy that keeps its routes in memory and proxies nothing.

Used only by the in-process hub test: requests go straight to the hub's own
port, so no configurable-http-proxy is needed.
"""

from jupyterhub.proxy import Proxy


class MemoryProxy(Proxy):
    should_start = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.routes = {}

    async def start(self):
        pass

    async def stop(self):
        pass

    async def add_route(self, routespec, target, data):
        self.routes[routespec] = {"routespec": routespec, "target": target, "data": data}

    async def delete_route(self, routespec):
        self.routes.pop(routespec, None)

    async def get_all_routes(self):
        return dict(self.routes)
