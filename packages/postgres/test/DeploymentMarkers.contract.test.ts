import { PgDeploymentMarkers } from "@cowork/postgres"
import { Layer } from "effect"
import { deploymentMarkersContract } from "../../services/test/support/DeploymentMarkersContract.ts"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"

deploymentMarkersContract("postgres", PgDeploymentMarkers.layer.pipe(Layer.provideMerge(TestDatabase.layer())))
